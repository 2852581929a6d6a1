"""Face landmarks from MediaPipe FaceMesh in tracking mode (one face, 478 points with the iris refinement).

Tracking mode (`static_image_mode=False`) runs the face detector only until a face is found and then
crops the next frame around the previous landmarks, which is several times cheaper than detecting every
frame. Frames must therefore come in order, from one stream: use one FaceLandmarks per stream.

    with FaceLandmarks() as finder:
        points = finder.find(bgr_frame)   # (478, 2) float32 source pixels, or None when no face

mediapipe is imported when the object is built, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.errors import MestreamError


@dataclass(frozen=True)
class LandmarkParams:
    # Frames whose longer side exceeds this are shrunk before FaceMesh (0 = never): the model sees a
    # 192x192 face crop anyway, so a smaller input mostly saves the colour conversion and the copy into
    # MediaPipe. Landmarks are returned in source pixels either way.
    max_side: int = 0
    refine_landmarks: bool = True  # iris points 468..477; steadier eye corners, a little slower
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.max_side != 0 and self.max_side < 64:
            raise MestreamError(f"max_side={self.max_side} is too small; expected 0 (no shrink) or >= 64 pixels")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MestreamError(f"{name}={value} is out of range; expected a value in [0, 1]")


# One NormalizedLandmark on the protobuf wire when x, y and z are all set: field 1 of the list (tag 0x0a)
# with length 15, then x (0x0d), y (0x15), z (0x1d) as little-endian float32.
_WIRE_LANDMARK = np.dtype(
    [("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"), ("tz", "u1"), ("z", "<f4")]
)
_WIRE_TAGS = (0x0A, 15, 0x0D, 0x15, 0x1D)


def normalised_xy(landmark_list) -> np.ndarray:
    """(N, 2) float32 x, y of a MediaPipe NormalizedLandmarkList.

    Reading 478 landmarks attribute by attribute costs about 0.7 ms in Python, a tenth of a FaceMesh
    call; serialising the list and viewing the bytes with numpy costs about 25 us. The wire layout is
    checked record by record, and anything unexpected (an unset field, extra fields) takes the slow path.
    """
    raw = landmark_list.SerializeToString()
    if len(raw) % _WIRE_LANDMARK.itemsize == 0:
        rec = np.frombuffer(raw, dtype=_WIRE_LANDMARK)
        if all((rec[name] == value).all() for name, value in zip(("tag", "len", "tx", "ty", "tz"), _WIRE_TAGS)):
            return np.stack([rec["x"], rec["y"]], axis=1).astype(np.float32)
    marks = landmark_list.landmark
    return np.fromiter((v for m in marks for v in (m.x, m.y)), dtype=np.float32, count=2 * len(marks)).reshape(-1, 2)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise MestreamError(f"image of shape {image.shape}; expected (H, W, 3) BGR or (H, W) grey uint8")


class FaceLandmarks:
    """MediaPipe FaceMesh for one stream, one face; `find(image)` gives landmarks in source pixels."""

    def __init__(self, params: LandmarkParams | None = None) -> None:
        self.params = params or LandmarkParams()
        try:
            import mediapipe as mp
        except ImportError as exc:  # a base dependency, but a hand-made slim install may lack it
            raise MestreamError(
                "mediapipe is not installed; the face tracker needs it (a base dependency of mestream): "
                "pip install 'mediapipe==0.10.21'"
            ) from exc
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=self.params.refine_landmarks,
            min_detection_confidence=self.params.min_detection_confidence,
            min_tracking_confidence=self.params.min_tracking_confidence,
        )

    def find(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks (N, 2) float32 in pixels of `image`, or None when there is no face."""
        if image.dtype != np.uint8:
            raise MestreamError(f"image of dtype {image.dtype}; expected uint8")
        h, w = image.shape[:2]
        small = image
        side = self.params.max_side
        if side and max(h, w) > side:
            f = side / max(h, w)
            small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        result = self._mesh.process(_to_rgb(small))
        if not result.multi_face_landmarks:
            return None
        # normalised coordinates are fractions of the input's width and height, so the shrink cancels out
        points = normalised_xy(result.multi_face_landmarks[0])
        points[:, 0] *= w
        points[:, 1] *= h
        return points

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceLandmarks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
