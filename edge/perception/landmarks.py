"""Face landmarks from MediaPipe FaceMesh in tracking mode (up to max_faces faces, 478 points each with the iris refinement).

Tracking mode (`static_image_mode=False`) runs the face detector only until a face is found and then
crops the next frame around the previous landmarks, which is several times cheaper than detecting every
frame. Frames must therefore come in order, from one stream: use one FaceLandmarks per stream.

    with FaceLandmarks() as finder:
        points = finder.find(bgr_frame)   # (478, 2) float32 source pixels, or None when no face
        faces = finder.find_all(bgr_frame)  # a list of those, up to LandmarkParams.max_faces

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
    # FaceMesh's own detector is short-range (a face filling a good part of the frame). With this on, a
    # frame where it finds nothing goes to MediaPipe's full-range detector; a face found there is zoomed
    # (a square of ZOOM_CONTEXT face sides, resized to ZOOM_SIDE px) and meshed in that window, which then
    # follows the face while it stays small. Costs a few ms on frames without any face.
    small_faces: bool = True
    # The full-range detector's score needed to start that zoom: cartoon faces in the asset videos score
    # 0.62-0.68 there, small real faces 0.63-0.93 (most above 0.75), so this trades a few small faces
    # for no phantom faces.
    small_face_confidence: float = 0.7
    # Faces FaceMesh looks for (its max_num_faces). The small-face zoom follows one face, and only on
    # frames where the main mesh finds none.
    max_faces: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.max_faces, int) or isinstance(self.max_faces, bool) or self.max_faces < 1:
            raise MestreamError(f"max_faces={self.max_faces!r}; expected an integer >= 1 (faces tracked per source), e.g. max_faces = 2")
        if self.max_side != 0 and self.max_side < 64:
            raise MestreamError(f"max_side={self.max_side} is too small; expected 0 (no shrink) or >= 64 pixels")
        for name in ("min_detection_confidence", "min_tracking_confidence", "small_face_confidence"):
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


ZOOM_SIDE = 256  # pixels of the zoom window fed to FaceMesh for a small face
ZOOM_CONTEXT = 3.0  # zoom window side in face-box sides: the face fills about a third, as FaceMesh likes
ZOOM_MAX_FACE = 0.25  # a face wider than this fraction of the frame's short side goes back to the main mesh
# On frames without a face the full-range detector runs only on every Nth one: it costs about 6 ms of CPU,
# which on every frame would halve the stage's rate exactly when nobody is there; a small face is then
# picked up within N frames (0.2 s at 30 fps).
SMALL_FACE_EVERY = 6


def _zoom_matrix(cx: float, cy: float, side: float) -> np.ndarray:
    """2x3 affine taking the square (centre cx, cy; side) of the source onto the ZOOM_SIDE window."""
    k = ZOOM_SIDE / side
    return np.array([[k, 0.0, ZOOM_SIDE / 2 - k * cx], [0.0, k, ZOOM_SIDE / 2 - k * cy]])


class FaceLandmarks:
    """MediaPipe FaceMesh for one stream; `find(image)` gives one face's landmarks in source pixels,
    `find_all(image)` up to max_faces of them."""

    def __init__(self, params: LandmarkParams | None = None) -> None:
        self.params = params or LandmarkParams()
        try:
            import mediapipe as mp
        except ImportError as exc:  # a base dependency, but a hand-made slim install may lack it
            missing = (exc.name or "mediapipe").split(".")[0]
            if missing != "mediapipe":  # mediapipe is there; a package it loads is not
                raise MestreamError(
                    f"mediapipe cannot start: {missing} is not installed, and `import mediapipe` loads it "
                    f"(a requirement of mediapipe itself): pip install {missing}"
                ) from exc
            raise MestreamError(
                "mediapipe is not installed; the face tracker needs it (a base dependency of mestream): "
                "pip install 'mediapipe==0.10.21'"
            ) from exc
        p = self.params
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=p.max_faces,
            refine_landmarks=p.refine_landmarks,
            min_detection_confidence=p.min_detection_confidence,
            min_tracking_confidence=p.min_tracking_confidence,
        )
        self._detector = None
        self._zoom_mesh = None
        if p.small_faces:
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=min(p.small_face_confidence, p.min_detection_confidence)
            )
            # static mode: the window moves with the face, so FaceMesh's own tracking across calls would
            # start from a stale place; the window is small, so detecting in it every time stays cheap
            self._zoom_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=1,
                refine_landmarks=p.refine_landmarks,
                min_detection_confidence=p.min_detection_confidence,
            )
        self._zoom: tuple[float, float, float] | None = None  # (cx, cy, side) while a small face is followed
        self._faceless = 0  # frames in a row without a face, for SMALL_FACE_EVERY

    @property
    def zoomed(self) -> bool:
        """True while a small face is followed through the zoom window."""
        return self._zoom is not None

    def find(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks (N, 2) float32 in pixels of `image`, or None when there is no face."""
        faces = self.find_all(image)
        return faces[0] if faces else None

    def find_all(self, image: np.ndarray) -> list[np.ndarray]:
        """Landmarks (N, 2) float32 in pixels of `image` of each face found (at most max_faces; [] for none)."""
        if image.dtype != np.uint8:
            raise MestreamError(f"image of dtype {image.dtype}; expected uint8")
        if self._zoom is not None:
            points = self._find_zoomed(image, converted=False)
            if points is not None:
                self._follow(image, points)
                return [points]
            self._zoom = None  # lost in the window: look at the whole frame again, now
            self._faceless = 0  # ... with the full-range detector too
        rgb = _to_rgb(image)
        faces = self._find_whole(image, rgb)
        if faces or self._detector is None:
            self._faceless = 0
            return faces
        self._faceless += 1
        if (self._faceless - 1) % SMALL_FACE_EVERY:
            return []
        self._zoom = self._detect_small(image, rgb)
        if self._zoom is None:
            return []
        points = self._find_zoomed(rgb, converted=True)
        if points is None:
            self._zoom = None
            return []
        self._faceless = 0
        self._follow(image, points)
        return [points]

    def _follow(self, image: np.ndarray, points: np.ndarray) -> None:
        """Keep the zoom window on the face, or drop it once the face is large enough for the main mesh."""
        h, w = image.shape[:2]
        x0, y0 = points.min(0)
        x1, y1 = points.max(0)
        face = max(x1 - x0, y1 - y0)
        if face > ZOOM_MAX_FACE * min(h, w):
            self._zoom = None
            return
        cx, cy, side = self._zoom
        fx, fy = (x0 + x1) / 2, (y0 + y1) / 2
        # move the window only when the face drifts or changes size: a still window keeps the landmarks
        # (and so the held alignment) free of window-induced jitter
        if abs(fx - cx) > 0.1 * side or abs(fy - cy) > 0.1 * side or not 0.7 < ZOOM_CONTEXT * face / side < 1.4:
            self._zoom = (float(fx), float(fy), float(ZOOM_CONTEXT * face))

    def _find_whole(self, image: np.ndarray, rgb: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        side = self.params.max_side
        if side and max(h, w) > side:
            f = side / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        result = self._mesh.process(rgb)
        faces = []
        for marks in result.multi_face_landmarks or []:
            # normalised coordinates are fractions of the input's width and height, so the shrink cancels out
            points = normalised_xy(marks)
            points[:, 0] *= w
            points[:, 1] *= h
            faces.append(points)
        return faces

    def _detect_small(self, image: np.ndarray, rgb: np.ndarray) -> tuple[float, float, float] | None:
        h, w = image.shape[:2]
        result = self._detector.process(rgb)
        # filtered here: the full-range graph reports detections below its min_detection_confidence
        scored = [d for d in (result.detections or []) if d.score and d.score[0] >= self.params.small_face_confidence]
        if not scored:
            return None
        best = max(scored, key=lambda d: d.score[0])
        box = best.location_data.relative_bounding_box
        bw, bh = box.width * w, box.height * h
        return (box.xmin * w + bw / 2, box.ymin * h + bh / 2, ZOOM_CONTEXT * max(bw, bh))

    def _find_zoomed(self, image: np.ndarray, converted: bool) -> np.ndarray | None:
        m = _zoom_matrix(*self._zoom)
        window = cv2.warpAffine(image, m, (ZOOM_SIDE, ZOOM_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        result = self._zoom_mesh.process(window if converted else _to_rgb(window))
        if not result.multi_face_landmarks:
            return None
        points = normalised_xy(result.multi_face_landmarks[0]) * ZOOM_SIDE
        k = m[0, 0]
        points[:, 0] = (points[:, 0] - m[0, 2]) / k
        points[:, 1] = (points[:, 1] - m[1, 2]) / k
        return points.astype(np.float32)

    def close(self) -> None:
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()
            self._zoom_mesh.close()

    def __enter__(self) -> FaceLandmarks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
