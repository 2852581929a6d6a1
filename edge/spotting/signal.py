"""Regional motion between two aligned face crops, with head motion removed, and blink detection.

The crops come from the track stage already aligned to the canonical layout of edge/perception/align.py,
so the facial regions (brows, eyes, nose, mouth corners, chin) sit at fixed boxes. Per pair of crops:
1. dense flow (OpenCV DIS) on both crops shrunk to flow_size x flow_size;
2. head motion removed: an affine motion model is fitted by least squares to the flow over the whole
   face, refitted without the pixels it explains worst (an action unit moves a small part of the face,
   the head moves all of it), and subtracted. This generalises the usual nose-patch subtraction to small
   rotations and scale changes left over by alignment;
3. each region scores the largest local mean (a box filter about an action unit wide) of the residual
   flow's length inside its box, in pixels of the flow grid: an action unit moves a patch, not the
   whole box, and the local mean keeps its full size while averaging flow noise away. The crop's outer
   band (`band`) is left out: there lie the face's silhouette against the background and the crop's
   edge, where a moving head's flow is least exact (a motion boundary, content entering the crop) and
   where no action unit acts.

    meter = RegionMotion(flow_size=64)
    a, b = meter.prepare(crop_a), meter.prepare(crop_b)
    scores = meter.scores(a, b)          # (len(REGION_NAMES),) float32
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.perception.align import eye_aspect_ratio, region_boxes  # noqa: F401 - eye_aspect_ratio is part of this module's API
from edge.spotting.intervals import median

REGION_NAMES: tuple[str, ...] = (
    "brow_left",
    "brow_right",
    "eye_left",
    "eye_right",
    "nose",
    "mouth_left",
    "mouth_right",
    "chin",
)
EYE_REGIONS = np.array([n.startswith("eye") for n in REGION_NAMES])
# Left out of the signal around a blink: the eyes, and the brows just above them, where a lid sweep
# still shows through the flow's patch size (a brow move during a blink is lost, an accepted cost).
BLINK_MASK = np.array([n.startswith(("eye", "brow")) for n in REGION_NAMES])
# Far enough from the eyes that a lid sweep's leak through the flow does not reach them (it reaches the nose).
LOWER_FACE = np.array([n.startswith(("mouth", "chin")) for n in REGION_NAMES])

def is_lid_sweep(scores: np.ndarray, blink_px: float, drop: np.ndarray | None = None, drop_px: float = 0.0) -> bool:
    """A blink seen in the motion: an eye region moving further than the brow above it, and either far
    (blink_px) or, with `drop` (RegionMotion.lid_drop), downwards by more than drop_px. An upper lid
    closing moves the eye box down; a lid tightener (AU7) moves it up and a brow lowerer (AU4) moves the
    brow more than the eye, so neither is taken for a blink however large."""
    named = dict(zip(REGION_NAMES, scores))
    for i, side in enumerate(("left", "right")):
        eye = named[f"eye_{side}"]
        if eye <= named[f"brow_{side}"]:
            continue
        if eye > blink_px or (drop is not None and drop_px > 0 and drop[i] > drop_px):
            return True
    return False


def _solve3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 @ b for a 3x3 a, by its adjugate in plain floats: np.linalg.solve goes through LAPACK, whose
    call overhead (and, on a busy machine, its thread pool) costs more than the rest of a frame here."""
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = a.tolist()
    c00, c01, c02 = a11 * a22 - a12 * a21, a02 * a21 - a01 * a22, a01 * a12 - a02 * a11
    c10, c11, c12 = a12 * a20 - a10 * a22, a00 * a22 - a02 * a20, a02 * a10 - a00 * a12
    c20, c21, c22 = a10 * a21 - a11 * a20, a01 * a20 - a00 * a21, a00 * a11 - a01 * a10
    det = a00 * c00 + a01 * c10 + a02 * c20
    if abs(det) < 1e-12:
        return np.linalg.lstsq(a, b, rcond=None)[0]
    adj = np.array([[c00, c01, c02], [c10, c11, c12], [c20, c21, c22]])
    return adj @ b / det


class RegionMotion:
    """Flow between two prepared crops -> per-region residual motion. One per stream (DIS keeps buffers)."""

    def __init__(self, flow_size: int, patch: int = 9, recompensate_px: float = 0.0, refine_iters: int = 3,
                 band: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        self.size = flow_size
        self.patch = patch
        self.recompensate_px = recompensate_px
        # DIS "ultrafast" with a few variational sweeps. finest_scale 0 (patches matched at full grid
        # resolution) sees the sub-pixel motion of an ME on a 64 px face best, at about 5x the cost of 1.
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        dis.setFinestScale(0)
        dis.setPatchSize(8)
        dis.setPatchStride(4)
        dis.setVariationalRefinementIterations(refine_iters)
        self._dis = dis
        self.last_reach = 0.0  # the head motion residual() last found (flow-grid px), before any recompensation
        boxes = region_boxes(flow_size)
        # brows stop where the eye boxes start and the nose starts below them (half a patch away), so a
        # blink's lid sweep, which masks the eye regions, does not leak into its neighbours through the
        # overlap of the boxes or through the box filter
        eye_top = min(boxes["eye_left"][1], boxes["eye_right"][1]) - patch // 2
        for name in ("brow_left", "brow_right"):
            x, y, w, h = boxes[name]
            boxes[name] = (x, y, w, max(2, min(h, eye_top - y)))
        eye_bottom = max(b[1] + b[3] for n, b in boxes.items() if n.startswith("eye")) + patch // 2
        x, y, w, h = boxes["nose"]
        top = min(max(y, eye_bottom), y + h - 2)
        boxes["nose"] = (x, top, w, y + h - top)
        self.boxes = [boxes[name] for name in REGION_NAMES]
        self._eye_boxes = [boxes["eye_left"], boxes["eye_right"]]
        # The affine head-motion fit uses every other pixel of the face's bounding box.
        x0 = min(b[0] for b in self.boxes)
        y0 = min(b[1] for b in self.boxes)
        x1 = max(b[0] + b[2] for b in self.boxes)
        y1 = max(b[1] + b[3] for b in self.boxes)
        ys, xs = np.mgrid[y0:y1:2, x0:x1:2]
        self._fit_idx = (ys.ravel(), xs.ravel())
        c = flow_size / 2.0
        self._design = np.stack([xs.ravel() - c, ys.ravel() - c, np.ones(xs.size)], axis=1).astype(np.float64)
        self._pinv = np.linalg.pinv(self._design)
        self._corners = np.array([[x - c, y - c, 1.0] for x in (x0, x1) for y in (y0, y1)])
        # the scored part of the grid: band = (each side, top, bottom) as fractions of the crop
        side, top, bottom = (int(round(f * flow_size)) for f in band)
        self._scored = None
        if side or top or bottom:
            self._scored = np.zeros((flow_size, flow_size), np.float32)
            self._scored[top : flow_size - bottom, side : flow_size - side] = 1.0
        gy, gx = np.mgrid[0:flow_size, 0:flow_size]
        self._gx = (gx - c).astype(np.float32)
        self._gy = (gy - c).astype(np.float32)

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """The crop shrunk to the flow grid (uint8, flow_size x flow_size)."""
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if crop.shape[0] == self.size and crop.shape[1] == self.size:
            return np.ascontiguousarray(crop)
        return cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def _head_model(self, flow: np.ndarray) -> np.ndarray:
        """The affine motion model (3, 2) fitted to a flow field, refitted without the worst-explained pixels."""
        samples = flow[self._fit_idx].astype(np.float64)  # (N, 2)
        coef = self._pinv @ samples  # (3, 2) affine motion model
        err = np.abs(samples - self._design @ coef).sum(axis=1)
        keep = err <= max(2.0 * median(err), 1e-3)
        if keep.sum() >= 12:
            # the normal equations (3x3) give lstsq's answer here (a full-rank, well-conditioned design)
            # at a fraction of its cost
            x = self._design[keep]
            coef = _solve3(x.T @ x, x.T @ samples[keep])
        return coef

    def residual(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from a to b minus the fitted head motion, (flow_size, flow_size, 2) float32.

        Where the head motion moves some face pixel more than recompensate_px, b is first warped back by
        it and the flow measured again: DIS matches a small residual far more exactly than a shift of a
        pixel or more plus a rotation, whose errors (0.1-0.2 px on low-texture cheeks and chin) would
        otherwise remain after the subtraction and look like an action unit. Still heads cost one flow."""
        flow = self._dis.calc(a, b, None)
        coef = self._head_model(flow)
        self.last_reach = self._model_reach(coef)
        if self.recompensate_px > 0 and self.last_reach > self.recompensate_px:
            c = self.size / 2.0
            (ax, bx, cx), (ay, by, cy) = coef[:, 0].tolist(), coef[:, 1].tolist()
            back = np.array([[1.0 + ax, bx, cx - (ax + bx) * c], [ay, 1.0 + by, cy - (ay + by) * c]])
            b = cv2.warpAffine(b, back, (self.size, self.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
            flow = self._dis.calc(a, b, None)
            coef = self._head_model(flow)
        # subtract the affine model channel by channel (cheaper than a (F*F, 3) @ (3, 2) product)
        for ch in range(2):
            u, v, w = (float(x) for x in coef[:, ch])
            flow[..., ch] -= u * self._gx + v * self._gy + w
        return flow

    def _model_reach(self, coef: np.ndarray) -> float:
        """Largest displacement (flow-grid px) the affine model gives a corner of the face's bounding box."""
        return float(np.abs(self._corners @ coef).max())

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Largest local mean of residual motion length (flow-grid pixels) in each region of REGION_NAMES."""
        return self.field_scores(self.residual(a, b))

    def lid_drop(self, res: np.ndarray) -> np.ndarray:
        """Largest local mean of the downward motion (flow-grid px) in each eye box, image-left then right."""
        down = cv2.blur(np.ascontiguousarray(res[..., 1]), (self.patch, self.patch))
        return np.array([down[y : y + h, x : x + w].max() for x, y, w, h in self._eye_boxes], dtype=np.float32)

    def field_scores(self, res: np.ndarray) -> np.ndarray:
        """The region scores of a residual flow field (or of a difference of two: the motion between them)."""
        mag = cv2.magnitude(res[..., 0], res[..., 1])
        if self._scored is not None:
            mag *= self._scored
        mag = cv2.blur(mag, (self.patch, self.patch))
        return np.array([mag[y : y + h, x : x + w].max() for x, y, w, h in self.boxes], dtype=np.float32)
