"""How close is our flow form to the MEGC2019 composite's, on the one real CASME II clip we have?

    MESTREAM_ASSETS=../shared/assets .venv/bin/python benchmarks/prep_vs_composite.py

The composite's `STSNet_whole_norm_u_v_os/sub01_EP02_01f .png` was made from CASME II raw frames (onset 46,
apex 59 in the sheet, 200 fps); `videos/casme2_sub01_EP02_01f.avi` holds 44 frames of that clip whose
raw numbers are not known. So: onset = the video's first frame, every later frame tried as the apex, and
the Pearson correlation of each channel (u, v, strain; 28x28) with the composite image is printed for
  - "ours": the live tracker's canonical crop (edge/perception/align.py framing), as `mestream prep` does;
  - "composite framing": the same frames warped to the composite's own framing, an affine fitted from
    FaceMesh landmarks on the video frame to FaceMesh landmarks on the composite's apex crop (the
    composite crops are anisotropic: a taller-than-wide face box squeezed into a square).
Frame index 13 is raw frame 59 if the video holds consecutive raw frames from the onset.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.messages import Message
from edge.perception.align import apply_transform
from edge.perception.flow import flow_input
from edge.perception.landmarks import FaceLandmarks
from edge.stages.face_tracking import FaceTracking, TrackParams
from edge.tools.track_bench import read_frames


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    a = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return sol.T  # 2x3


def corr(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(a[c].ravel(), b[c].ravel())[0, 1]) for c in range(3)]


def main() -> int:
    root = Path(os.environ.get("MESTREAM_ASSETS", "../shared/assets"))
    comp = root / "preprocessed" / "HTNet_MEGC2019_composite"
    png = cv2.imread(str(comp / "STSNet_whole_norm_u_v_os" / "sub01_EP02_01f .png"))
    apex_jpg = cv2.imread(str(comp / "combined_datasets_whole" / "sub01_EP02_01f.jpg"))
    if png is None or apex_jpg is None:
        print(f"composite files not found under {comp}", file=sys.stderr)
        return 1
    reference = cv2.cvtColor(png, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32) / 255.0
    frames = read_frames(root / "videos" / "casme2_sub01_EP02_01f.avi")
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]

    stage = FaceTracking(TrackParams(detect_every=1))
    stage.open()
    crops, points = [], []
    for i in range(6):  # prime the hold on the first frame, as mestream prep does
        stage.process(Message("frame", {"seq": i, "t_capture_ns": i}, {"image": frames[0]}))
    for i, f in enumerate(frames):
        face = stage.process(Message("frame", {"seq": 6 + i, "t_capture_ns": 6 + i}, {"image": f}))[-1]
        crops.append(face.arrays["crop"])
        points.append(np.linalg.inv(np.vstack([face.header["transform"], [0, 0, 1]]))[:2] if i == 0 else None)
    stage.close()

    with FaceLandmarks() as a, FaceLandmarks() as b:
        src = a.find(frames[0])
        dst = b.find(apex_jpg)
    size = 128
    to_comp = fit_affine(src.astype(np.float64), dst.astype(np.float64) * (size / apex_jpg.shape[0]))
    resid = np.linalg.norm(apply_transform(to_comp, src) - dst * (size / apex_jpg.shape[0]), axis=1).mean()
    sx, sy = np.linalg.norm(to_comp[:, 0]), np.linalg.norm(to_comp[:, 1])
    print(f"composite framing: affine fit residual {resid:.2f} px at {size}, x/y scale ratio {sy / sx:.3f}")
    comp_crops = [cv2.warpAffine(g, to_comp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for g in grey]

    print(f"{'apex idx':>8s}  {'ours u/v/strain':>24s}  {'composite framing u/v/strain':>30s}")
    rows = []
    for k in range(1, len(frames)):
        ours = corr(flow_input(crops[0], crops[k]), reference)
        theirs = corr(flow_input(comp_crops[0], comp_crops[k]), reference)
        rows.append((k, ours, theirs))
        print(f"{k:8d}  {' '.join(f'{v:+.3f}' for v in ours):>24s}  {' '.join(f'{v:+.3f}' for v in theirs):>30s}")
    best = max(rows, key=lambda r: np.mean(r[2]))
    print(f"apex idx 13 (raw 59 if consecutive): ours mean {np.mean(rows[12][1]):+.3f}, composite framing mean {np.mean(rows[12][2]):+.3f}")
    print(f"best apex idx {best[0]}: composite framing mean {np.mean(best[2]):+.3f} ({' '.join(f'{v:+.3f}' for v in best[2])}), ours {np.mean(best[1]):+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
