"""How far HTNet's region centres move over the composite's apex crops, at the 28x28 flow's scale.

    python benchmarks/region_spread.py --data $MESTREAM_ASSETS/preprocessed/HTNet_MEGC2019_composite

HTNet crops 14x14 flow boxes around per-sample eye and mouth-corner landmarks. If the faces are framed
consistently, fixed boxes inside the model (trainer/models/ststreg.py) do the same job with no landmarks in
the live pipeline. MediaPipe face mesh (static images) on every apex crop: eye inner corners 133 and 362,
mouth corners 61 and 291, scaled to 28x28; per dataset part and pooled, the median centre and the median and
90th percentile of each sample's distance from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

LANDMARKS = {"eye_left": 133, "eye_right": 362, "mouth_left": 61, "mouth_right": 291}


def part_of(name: str) -> str:
    """The composite's file names: CASME II 'sub..', SMIC 's..', SAMM '0..'."""
    return "casme2" if name.startswith("sub") else "samm" if name[:1].isdigit() else "smic"


def centres(crops: Path) -> dict[str, dict[str, tuple[float, float]]]:
    import cv2
    import mediapipe as mp

    out = {}
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for path in sorted(crops.glob("*.jpg")):
            found = mesh.process(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)).multi_face_landmarks
            if found:
                points = found[0].landmark
                out[path.name] = {k: (points[i].x * 28, points[i].y * 28) for k, i in LANDMARKS.items()}
    return out


def spread_lines(found: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    lines = []
    for part in ("casme2", "smic", "samm", "pooled"):
        names = [n for n in found if part in ("pooled", part_of(n))]
        if not names:
            continue
        line = f"{part:7s} n={len(names):3d}"
        for key in LANDMARKS:
            xy = np.array([found[n][key] for n in names])
            distance = np.linalg.norm(xy - np.median(xy, 0), axis=1)
            x, y = np.median(xy, 0)
            line += f" | {key} ({x:.1f}, {y:.1f}) med {np.median(distance):.2f} p90 {np.percentile(distance, 90):.2f}"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="the composite folder (holds combined_datasets_whole/)")
    args = parser.parse_args(argv)
    crops = args.data / "combined_datasets_whole"
    if not crops.is_dir():
        print(f"error: {crops} is not a folder; pass --data the HTNet_MEGC2019_composite folder", file=sys.stderr)
        return 2
    found = centres(crops)
    print(f"faces found on {len(found)} of {len(list(crops.glob('*.jpg')))} apex crops; centre (x, y) at 28x28, "
          "distance from it in px")
    print("\n".join(spread_lines(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
