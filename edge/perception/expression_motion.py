"""How far a face's expression moves between two frames, in pixels: TV-L1 flow over the face with the head's
affine motion taken out, box-filtered over about an action unit's patch, the eye openings left out.

The measure of benchmarks/real_motion.py (real CASME II amplitudes) and of `mestream synth`'s check that a
source face is still at the scale of the micro-expressions it plants.
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH_EYE = 0.1  # box filter side / eye distance: about one action unit
# FaceMesh eye contours (image-left eye, then image-right eye): their insides are masked out
EYE_CONTOURS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
# What this measure reports of a motion that synth plants (edge.tools.synth.plant, the seven AUs at 0.01 eye
# distances on real CASME II frames, median over 184 clips; benchmarks/results/real_motion.md): the box
# filter and TV-L1's smoothing take about a quarter off a peak.
MEASURED_PER_PLANTED = 0.768


def eye_distance(marks: np.ndarray) -> float:
    """Outer eye corners (FaceMesh 33 and 263), as synth sizes its motions."""
    return float(np.linalg.norm(marks[33] - marks[263]))


def patch_px(marks: np.ndarray) -> int:
    """Odd side of the box filter for this face."""
    return max(3, int(round(PATCH_EYE * eye_distance(marks))) | 1)


def face_mask(marks: np.ndarray, shape: tuple[int, int], inset: int) -> np.ndarray:
    """The face (hull of the landmarks) shrunk by `inset` px, without the eye openings."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(marks[:468].astype(np.int32)), 1)
    if inset > 0:
        mask = cv2.erode(mask, np.ones((2 * inset + 1, 2 * inset + 1), np.uint8))
    for contour in EYE_CONTOURS:
        cv2.fillPoly(mask, [marks[list(contour)].astype(np.int32)], 0)
    return mask.astype(bool)


def residual_flow(flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The flow minus the head's affine motion, fitted over the face robustly (a second fit leaves out the
    pixels that moved most after the first, where an expression is)."""
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    design = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], axis=1)
    target = flow.reshape(-1, 2).astype(np.float64)
    face = mask.ravel()
    use = face
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[use], target[use], rcond=None)
        resid = target - design @ coef
        size = np.linalg.norm(resid, axis=1)
        use = face & (size <= 2.0 * np.median(size[face]) + 1e-6)
    return resid.reshape(h, w, 2).astype(np.float32)


def peak_displacement(a: np.ndarray, b: np.ndarray, mask: np.ndarray, box: int) -> tuple[float, tuple[int, int]]:
    """Largest box-filtered residual displacement (px) inside the mask from grey frame a to b, and where."""
    from edge.perception.flow import TVL1Params, tvl1_flow

    resid = residual_flow(tvl1_flow(a, b, TVL1Params()), mask)
    size = np.linalg.norm(cv2.blur(resid, (box, box), borderType=cv2.BORDER_REPLICATE), axis=2)
    size[~mask] = 0.0
    y, x = np.unravel_index(int(np.argmax(size)), size.shape)
    return float(size[y, x]), (int(x), int(y))


def face_box(marks: np.ndarray, shape: tuple[int, int], margin: float = 0.15) -> tuple[slice, slice]:
    """Rows and columns of the landmarks' box grown by `margin` of its size, inside the image: flow over the
    face alone costs a fraction of the whole frame's."""
    x0, y0 = marks[:468].min(axis=0)
    x1, y1 = marks[:468].max(axis=0)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    h, w = shape
    return (slice(max(0, int(y0 - my)), min(h, int(np.ceil(y1 + my)))),
            slice(max(0, int(x0 - mx)), min(w, int(np.ceil(x1 + mx)))))
