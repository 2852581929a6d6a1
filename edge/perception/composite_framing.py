"""The recognition input framed as the MEGC2019 composite frames its faces: the aligned crops re-cut, then flow_input.

A model trained on the composite's flow images (`STSNet_whole_norm_u_v_os`) learned faces framed the way the
CASME II "Cropped" release frames them, which is not quite the tracker's aligned crop (edge/perception/align.py
CROP_WINDOW): registered pixel to pixel (affine ECC, grey Pearson 0.9997 after registration) against the
composite's apex images, the composite's face is a sub-window of the aligned 128 crop, cut ~3% inside it on the
left, right and top and ~6% at the bottom. COMPOSITE_WINDOW is that sub-window, the median over the 109 CASME II
clips that are both in the composite and in casme2_cropped (leaving any one subject out moves each edge by
<= 0.006). Re-cutting the live crops to it before the live TV-L1 lifts the correlation of the live input with the
composite's own images from u 0.78 / v 0.84 / strain 0.61 to 0.86 / 0.91 / 0.77 (medians, 103 clips;
benchmarks/results/cross_form_loso.md), as close as OpenCV's DualTVL1 run on the Cropped frames themselves.

An artifact asks for it with `flow.crop_window = [x0, y0, x1, y1]` in its metadata (fractions of the aligned
crop's side); the classify stage then feeds it composite_flow_input instead of flow_input.
"""

from __future__ import annotations

import numpy as np

from edge.perception.flow import FLOW_FORM, TVL1Params, flow_input
from engines.errors import MestreamError

# (x0, y0, x1, y1) as fractions of the aligned crop's side: see the module docstring.
COMPOSITE_WINDOW = (0.026, 0.030, 0.967, 0.937)
# the input form an artifact with a crop window declares (flow.form and its flow input's normalisation)
FRAMED_FLOW_FORM = FLOW_FORM.replace(
    "on the aligned grey crop;", "on the aligned grey crop re-cut to crop_window (the MEGC2019 composite's framing);")


def check_window(window) -> tuple[float, float, float, float]:
    """A crop window from artifact metadata as four floats, or a one-line error naming the value."""
    try:
        x0, y0, x1, y1 = (float(v) for v in window)
    except (TypeError, ValueError):
        raise MestreamError(f"crop window {window!r} is not four numbers; expected [x0, y0, x1, y1], e.g. "
                            f"{list(COMPOSITE_WINDOW)}: re-export the artifact") from None
    if not (-0.5 <= x0 < x1 <= 1.5 and -0.5 <= y0 < y1 <= 1.5 and x1 - x0 >= 0.25 and y1 - y0 >= 0.25):
        raise MestreamError(f"crop window {[x0, y0, x1, y1]} is not a window of the crop; expected fractions of its "
                            f"side with x0 < x1 and y0 < y1, e.g. {list(COMPOSITE_WINDOW)}")
    return x0, y0, x1, y1


def reframe(crop: np.ndarray, window=COMPOSITE_WINDOW) -> np.ndarray:
    """The crop's sub-window `window` resized back to the crop's own size (bilinear, borders replicated)."""
    import cv2

    crop = np.asarray(crop)
    if crop.ndim not in (2, 3) or min(crop.shape[:2]) < 8:
        raise MestreamError(f"crop of shape {crop.shape} cannot be re-framed; expected an (H, W) or (H, W, C) image")
    x0, y0, x1, y1 = check_window(window)
    h, w = crop.shape[:2]
    # output pixel (x, y) samples the crop at (x0 w + x (x1 - x0), y0 h + y (y1 - y0)): pixel index coordinates,
    # as the registration measured them
    to_crop = np.array([[x1 - x0, 0.0, x0 * w], [0.0, y1 - y0, y0 * h]], np.float64)
    return cv2.warpAffine(crop, to_crop, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def composite_flow_input(onset_crop: np.ndarray, apex_crop: np.ndarray, params: TVL1Params = TVL1Params(),
                         size: int = 28, window=COMPOSITE_WINDOW) -> np.ndarray:
    """flow_input (3, size, size) of the two aligned crops re-cut to `window` (the composite's framing)."""
    return flow_input(reframe(onset_crop, window), reframe(apex_crop, window), params, size=size)
