"""Experiment: HTNet's regions cut per sample at landmarks, scored by inner validation on training subjects.

    python benchmarks/region_landmarks_inner.py --data DIR --labels CSV --seeds 0 1 --workers 2 --out inner.json

trainer/models/ststreg.py cuts the regions with fixed boxes. HTNet cuts them at each sample's landmarks. Here
every sample's 28x28 flow is replaced by its 2x2 mosaic of 14x14 boxes centred on its own MediaPipe eye inner
corners and mouth corners (benchmarks/region_spread.py; centres rounded and clipped to 7..21 as HTNet does;
the fixed boxes where no face is found), and ststreg view=whole (an ststens) is trained on that mosaic with
trainer.inner_select's protocol (same outer folds, split and seeds). Only training subjects are scored.
Live, this would need track to send the four landmark positions in the canonical crop with every event and
infer to cut the flow at them before the model: an input the artifact does not have today.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from region_spread import LANDMARKS  # noqa: E402

HALF = 7


def landmark_boxes(apex: np.ndarray) -> list[list[tuple[int, int]] | None]:
    """Per sample: (row start, column start) of the four 14x14 boxes in ststreg's BOXES order, or None."""
    import mediapipe as mp

    out = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for image in apex:
            found = mesh.process(np.ascontiguousarray(image)).multi_face_landmarks
            if not found:
                out.append(None)
                continue
            points = found[0].landmark
            boxes = []
            for index in LANDMARKS.values():
                x = int(np.clip(round(points[index].x * 28), HALF, 28 - HALF))
                y = int(np.clip(round(points[index].y * 28), HALF, 28 - HALF))
                boxes.append((y - HALF, x - HALF))
            out.append(boxes)
    return out


def per_sample_mosaic(flow: np.ndarray, boxes: list) -> np.ndarray:
    from trainer.models.ststreg import BOXES, SIZE

    out = np.empty_like(flow)
    for i, sample_boxes in enumerate(boxes):
        crops = [flow[i, :, r:r + SIZE, c:c + SIZE] for r, c in (sample_boxes or BOXES)]
        out[i] = np.concatenate([np.concatenate(crops[:2], axis=2), np.concatenate(crops[2:], axis=2)], axis=1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import trainer.train
    from trainer.data.megc2019 import load_megc2019
    from trainer.inner_select import select

    samples = load_megc2019(args.data, args.labels)
    boxes = landmark_boxes(samples.apex)
    mosaic = per_sample_mosaic(samples.flow, boxes)
    # select() prepares the arrays once, here, and hands them to its workers: they train on the mosaic
    trainer.train.prepare_inputs = lambda family, _samples: {"flow": mosaic}
    result = select("ststreg", samples, [{"epochs": 50, "view": "whole"}], args.seeds, workers=args.workers)
    result["faces_found"] = sum(b is not None for b in boxes)
    given = sys.argv[1:] if argv is None else argv
    result["command"] = "python benchmarks/region_landmarks_inner.py " + " ".join(given)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"landmarks found on {result['faces_found']} of {len(boxes)} apex crops")
    for row in sorted(result["rows"], key=lambda r: -r["uf1"]):
        print(f"per-sample regions {row['scoring']:22s} UF1 {row['uf1']:.4f} UAR {row['uar']:.4f} "
              f"per seed {row['uf1_per_seed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
