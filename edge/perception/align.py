"""Face alignment: a similarity transform from eye corners and nose to a canonical crop of side S.

The layout is written in "eye units": the subject's two outer eye corners sit at (0, 0) and (1, 0). A
similarity (rotation, uniform scale, shift) takes the face's anchors there; then a fixed axis-aligned
scaling maps the CROP_WINDOW of that plane onto the S x S crop.

CROP_WINDOW is the framing of the MEGC2019 composite's face crops (STSTNet/HTNet), measured with FaceMesh
on 220 of its 442 apex crops (every other one; median; CASME II -0.17..1.19 x -0.48..1.28, SMIC
-0.19..1.22 x -0.47..1.28, SAMM -0.32..1.29 x -0.77..1.24): brows to chin, cheek to cheek. Those crops
are a taller-than-wide face box squeezed into a square (vertical scale 0.79 of the horizontal), and the
crop here is squeezed the same way, so that flow images and apex crops made from it match what
composite-trained models learnt from: on the real CASME II clip sub01_EP02_01f the flow form's
correlation with the composite's own image rose from about 0.1 with a square [-0.4, 1.4]^2 window to
about 0.7 with this one (benchmarks/prep_vs_composite.py).

`SteadyAligner` holds the transform while the head is still and follows it only while the head moves,
because alignment jitter (landmark noise of a fraction of a pixel, frame to frame) looks exactly like a
micro-expression to a spotter that differences aligned crops. It also holds through blinks: FaceMesh
puts the eye corners (four of the six anchors) a pixel or two off while the lids close, and following
them would shift the whole crop exactly when the spotter has masked the eyes and looks at the rest.

    aligner = SteadyAligner(AlignParams(size=128))
    step = aligner.update(landmarks_px)          # (N, 2) MediaPipe landmarks in source pixels
    crop = warp_crop(grey_frame, step.transform, 128)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.errors import MestreamError

# MediaPipe FaceMesh indices of the alignment anchors: outer and inner eye corners (image left first,
# i.e. the subject's right eye), nose bridge between the eyes and nose tip. Eye corners and nose barely
# move with expressions, unlike brows and mouth, so they carry the head pose only.
ANCHOR_INDICES: tuple[int, ...] = (33, 133, 362, 263, 168, 1)

# MediaPipe FaceMesh eye contour points for the eye aspect ratio: outer corner, two upper-lid points,
# inner corner, two lower-lid points (image-left eye, then image-right eye).
EAR_POINTS = ((33, 160, 158, 133, 153, 144), (263, 387, 385, 362, 380, 373))

# Where those anchors go, in eye units (outer eye corners at (0, 0) and (1, 0)).
ANCHOR_TEMPLATE = np.array(
    [
        [0.00, 0.00],  # 33  outer corner, image-left eye
        [0.31, 0.03],  # 133 inner corner, image-left eye
        [0.69, 0.03],  # 362 inner corner, image-right eye
        [1.00, 0.00],  # 263 outer corner, image-right eye
        [0.50, -0.02],  # 168 nose bridge
        [0.50, 0.48],  # 1   nose tip
    ],
    dtype=np.float64,
)

# The crop covers this window of the eye-unit plane, (x0, y0, x1, y1): see the module docstring.
CROP_WINDOW = (-0.19, -0.48, 1.22, 1.27)

# Facial regions of the canonical crop as fractions of S: (x0, y0, x1, y1). "left"/"right" are image
# left and right. Boxes were placed around the mean landmark positions of brows (70, 105, 107 / 300,
# 334, 336), eyelids (159, 145 / 386, 374), nose (168 to 4), mouth corners (61 / 291) and chin (199, 152).
# The nose box is rigid under expressions: a spotter subtracts its motion as residual head motion.


def _eye_units_box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    wx0, wy0, wx1, wy1 = CROP_WINDOW

    def fx(u: float) -> float:
        return round(min(1.0, max(0.0, (u - wx0) / (wx1 - wx0))), 4)

    def fy(v: float) -> float:
        return round(min(1.0, max(0.0, (v - wy0) / (wy1 - wy0))), 4)

    return (fx(x0), fy(y0), fx(x1), fy(y1))


REGIONS: dict[str, tuple[float, float, float, float]] = {
    "brow_left": _eye_units_box(-0.22, -0.40, 0.46, -0.06),
    "brow_right": _eye_units_box(0.54, -0.40, 1.22, -0.06),
    "eye_left": _eye_units_box(-0.10, -0.13, 0.42, 0.13),
    "eye_right": _eye_units_box(0.58, -0.13, 1.10, 0.13),
    "nose": _eye_units_box(0.36, 0.06, 0.64, 0.55),
    "mouth_left": _eye_units_box(-0.02, 0.60, 0.40, 1.00),
    "mouth_right": _eye_units_box(0.60, 0.60, 1.02, 1.00),
    "chin": _eye_units_box(0.28, 1.05, 0.72, 1.38),
}


def region_boxes(size: int) -> dict[str, tuple[int, int, int, int]]:
    """REGIONS in pixels of an S x S crop, as (x, y, w, h) boxes clipped to the crop."""
    boxes = {}
    for name, (x0, y0, x1, y1) in REGIONS.items():
        a = int(round(max(0.0, x0) * size))
        b = int(round(max(0.0, y0) * size))
        c = int(round(min(1.0, x1) * size))
        d = int(round(min(1.0, y1) * size))
        boxes[name] = (a, b, c - a, d - b)
    return boxes


@dataclass(frozen=True)
class AlignParams:
    size: int = 128  # S: side of the square aligned crop, pixels
    # Hold: the held transform is kept until the anchors, mapped by it, stray this far (mean, in crop
    # pixels) from where the template puts them, or the head turns this much in-plane. 1.0 px at S=128 is
    # about twice MediaPipe's frame-to-frame anchor noise on a still face, and well under a head move.
    move_px: float = 1.0
    move_deg: float = 1.5
    # Following: the transform is re-estimated every frame while the head moves, and held again once the
    # per-frame change stays below settle_px for settle_frames frames; the held transform is then the mean
    # of those last estimates, which averages landmark noise away.
    settle_px: float = 0.5
    settle_frames: int = 3
    # Blink hold: while the eyes' aspect ratio is under this fraction of its running median, the landmarks
    # are not trusted for alignment (the eye corners slide as the lids close) and the transform is kept.
    # A half-closed eye (about 0.65 of open on the synthetic and CASME II blinks) already moves the corners.
    blink_ratio: float = 0.8

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise MestreamError(f"crop size {self.size} is out of range; expected 16..1024 pixels, e.g. 128")
        if not 0 <= self.blink_ratio < 1:
            raise MestreamError(f"blink_ratio={self.blink_ratio} is out of range; expected 0..1 (0 = no blink hold), e.g. 0.8")
        for name in ("move_px", "move_deg", "settle_px"):
            if getattr(self, name) < 0:
                raise MestreamError(f"{name}={getattr(self, name)} is negative; expected a value >= 0")
        if self.settle_frames < 1:
            raise MestreamError(f"settle_frames={self.settle_frames}; expected an integer >= 1")


def window_transform(size: int) -> np.ndarray:
    """The fixed 2x3 map from eye units to pixels of the S x S crop (CROP_WINDOW onto the square)."""
    x0, y0, x1, y1 = CROP_WINDOW
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    return np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine doing `inner` then `outer`."""
    m = outer[:, :2] @ inner
    m[:, 2] += outer[:, 2]
    return m


def template_points(size: int) -> np.ndarray:
    """Anchor positions in an S x S crop, (len(ANCHOR_INDICES), 2) float64."""
    return apply_transform(window_transform(size), ANCHOR_TEMPLATE)


def anchors(landmarks: np.ndarray) -> np.ndarray:
    """The alignment anchors out of a full MediaPipe landmark array (N >= 468, 2)."""
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] < 2:
        raise MestreamError(
            f"landmarks of shape {landmarks.shape}; expected MediaPipe FaceMesh's (468 or 478, 2) array"
        )
    return landmarks[list(ANCHOR_INDICES), :2].astype(np.float64)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst; 2x3 float64.

    Umeyama's closed form, without reflection: no RANSAC, since every anchor is trusted and a
    deterministic answer keeps the held transform reproducible.
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s < 1e-12:
        raise MestreamError("alignment anchors collapse to one point; expected a face with distinct eye corners")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_similarity(landmarks: np.ndarray) -> np.ndarray:
    """The similarity (2x3) from source pixels to eye units, from one face's landmarks."""
    return estimate_similarity(anchors(landmarks), ANCHOR_TEMPLATE)


def align_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The affine (2x3) from source pixels to the canonical S x S crop, from one face's landmarks."""
    return compose(window_transform(size), align_similarity(landmarks))


def apply_transform(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2x3 affine transform."""
    return points @ transform[:, :2].T + transform[:, 2]


def eye_aspect_ratio(landmarks: np.ndarray | None) -> float | None:
    """Mean eye aspect ratio of both eyes (lid opening over eye width), or None without a full mesh."""
    if landmarks is None or landmarks.ndim != 2 or landmarks.shape[0] < 468:
        return None
    ratios = []
    for p1, p2, p3, p4, p5, p6 in EAR_POINTS:
        width = float(np.hypot(*(landmarks[p1, :2] - landmarks[p4, :2])))
        if width < 1e-6:
            return None
        opening = float(np.hypot(*(landmarks[p2, :2] - landmarks[p6, :2])) + np.hypot(*(landmarks[p3, :2] - landmarks[p5, :2])))
        ratios.append(opening / (2.0 * width))
    return 0.5 * (ratios[0] + ratios[1])


def rotation_deg(transform: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))


def warp_crop(image: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """The aligned S x S crop (grey or colour, as the input) of an image, bilinear, border replicated."""
    return cv2.warpAffine(
        image, transform, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


@dataclass(frozen=True)
class AlignStep:
    transform: np.ndarray  # 2x3 float64, source pixels -> crop pixels
    held: bool  # True when the transform is the held one (head still)
    deviation_px: float  # mean anchor distance (crop px) between the held transform and this frame's estimate


class SteadyAligner:
    """Holds the alignment while the head is still; follows it frame by frame while the head moves.

    States: "hold" (transform fixed) and "follow" (re-estimated each frame). hold -> follow when this
    frame's anchors, mapped by the held transform, land more than move_px (crop pixels, mean) away from
    where this frame's own estimate puts them, or the in-plane rotation differs by more than move_deg.
    follow -> hold after settle_frames frames whose change from the frame before is under settle_px;
    the new held transform is their mean. The similarity to eye units is what is held and averaged; the
    crop transform is that similarity followed by the fixed window map. A frame whose eyes are closing
    (aspect ratio under blink_ratio of its running median) changes nothing: the current transform stays.
    """

    _EAR_HISTORY = 31  # eye ratios of open-eyed frames the blink median runs over

    def __init__(self, params: AlignParams) -> None:
        self.params = params
        self._window = window_transform(params.size)
        self._held: np.ndarray | None = None  # similarity, source px -> eye units
        self._following = False
        self._recent: list[np.ndarray] = []
        self._ears: list[float] = []
        self._ear_median = 0.0

    def reset(self) -> None:
        """Forget the face (call when it is lost): the next update starts afresh."""
        self._held = None
        self._following = False
        self._recent = []
        self._ears = []
        self._ear_median = 0.0

    def blinking(self, landmarks: np.ndarray) -> bool:
        """True when these landmarks' eyes are closing against the running median of open ones; an open
        eye's ratio joins that median."""
        ear = eye_aspect_ratio(landmarks)
        if ear is None or self.params.blink_ratio <= 0:
            return False
        if len(self._ears) >= 5 and ear < self.params.blink_ratio * self._ear_median:
            return True
        self._ears.append(ear)
        if len(self._ears) > self._EAR_HISTORY:
            del self._ears[0]
        self._ear_median = float(np.median(self._ears))
        return False

    @property
    def similarity(self) -> np.ndarray | None:
        """The current similarity from source pixels to eye units (None before a face)."""
        return self._held

    @property
    def transform(self) -> np.ndarray | None:
        """The current transform from source pixels to crop pixels (None before a face)."""
        return None if self._held is None else compose(self._window, self._held)

    @property
    def following(self) -> bool:
        """True while the head moves (or before the first face): the transform is not held yet."""
        return self._held is None or self._following

    def _deviation(self, held: np.ndarray, src: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
        mapped = apply_transform(compose(self._window, held), src)
        target = apply_transform(compose(self._window, estimate), src)
        px = float(np.linalg.norm(mapped - target, axis=1).mean())
        deg = abs((rotation_deg(held) - rotation_deg(estimate) + 180.0) % 360.0 - 180.0)
        return px, deg

    def _step(self, held: bool, px: float) -> AlignStep:
        return AlignStep(compose(self._window, self._held), held, px)

    def update(self, landmarks: np.ndarray) -> AlignStep:
        p = self.params
        src = anchors(landmarks)
        estimate = estimate_similarity(src, ANCHOR_TEMPLATE)
        if self._held is None:
            self._held = estimate
            self._following = True
            self._recent = [estimate]
            return self._step(False, 0.0)
        px, deg = self._deviation(self._held, src, estimate)
        if self.blinking(landmarks):
            return self._step(not self._following, px)
        if not self._following:
            if px <= p.move_px and deg <= p.move_deg:
                return self._step(True, px)
            self._following = True
            self._recent = []
        # following: a change under settle_px counts towards settling, a larger one restarts the count
        if px < p.settle_px:
            self._recent.append(estimate)
        else:
            self._recent = [estimate]
        if len(self._recent) >= p.settle_frames:
            self._held = np.mean(self._recent, axis=0)
            self._following = False
            self._recent = []
            return self._step(True, px)
        self._held = estimate
        return self._step(False, px)
