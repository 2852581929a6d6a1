"""The track stage: "frame" -> "face" (aligned crop, landmarks, box, transform) and face lost/found status.

Every frame gives exactly one "face" message, with found=False when there is no face, so sequence numbers
keep flowing to the spotter. A "status" message (event "face_found" / "face_lost") goes out before the
face message of the frame where the state changes, and once for the first frame.

Skipped work: FaceMesh is by far the slowest step, and while the head is still its only job is to
confirm that it is still (the steady aligner holds the transform anyway). `TrackParams.detect_every`
runs it only every Nth frame, and `motion_gate` runs it early when a small thumbnail of the face box
changes by more than that many grey levels since the last run; the crop warp itself runs on every frame.
Header field "fresh" says whether landmarks were computed on this frame, "held" whether the transform
is the held one (head still).

    stage = FaceTracking(TrackParams())
    python -c "from edge.stages.face_tracking import main; main()" VIDEO   # fps with and without skipping
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.messages import Message
from edge.perception.align import AlignParams, SteadyAligner, apply_transform, warp_crop
from edge.perception.landmarks import FaceLandmarks, LandmarkParams
from engines.errors import MestreamError

_THUMB = 24  # side of the face-box thumbnail the motion gate compares, pixels


@dataclass(frozen=True)
class TrackParams:
    align: AlignParams = field(default_factory=AlignParams)
    landmarks: LandmarkParams = field(default_factory=LandmarkParams)
    detect_every: int = 1  # run FaceMesh at least every Nth frame (1 = every frame)
    motion_gate: float = 0.0  # grey-level change of the face thumbnail that forces a FaceMesh run (0 = off)
    color_crop: bool = True  # also send "crop_color" (S, S, 3) when the source is colour
    # Frames without a face before "face_lost" is announced; a one-frame miss in mid-face is usually
    # FaceMesh losing track under motion blur and re-finding the face on the next frame.
    lost_after: int = 1

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise MestreamError(f"detect_every={self.detect_every}; expected an integer >= 1 (1 = every frame)")
        if self.motion_gate < 0:
            raise MestreamError(f"motion_gate={self.motion_gate} is negative; expected >= 0 grey levels (0 = off)")
        if self.lost_after < 1:
            raise MestreamError(f"lost_after={self.lost_after}; expected an integer >= 1")


def _thumbnail(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    H, W = grey.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + w), min(H, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((_THUMB, _THUMB), np.float32)
    return cv2.resize(grey[y0:y1, x0:x1], (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def _box(points: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


class FaceTracking:
    """Stage "track": MediaPipe landmarks, steady alignment to an S x S crop, face lost/found events."""

    name = "track"

    def __init__(self, params: TrackParams | None = None) -> None:
        self.params = params or TrackParams()
        self._finder: FaceLandmarks | None = None
        self._aligner = SteadyAligner(self.params.align)
        self._present: bool | None = None  # None until the first frame
        self._misses = 0
        self._points: np.ndarray | None = None  # source landmarks of the last FaceMesh run
        self._box: tuple[int, int, int, int] | None = None
        self._ref_thumb: np.ndarray | None = None
        self._since_run = 0
        self.landmark_runs = 0  # FaceMesh calls so far, for benchmarks

    def open(self) -> None:
        self._finder = FaceLandmarks(self.params.landmarks)

    def close(self) -> None:
        if self._finder is not None:
            self._finder.close()
            self._finder = None

    def _status(self, event: str, header: dict, detail: str) -> Message:
        return Message(
            "status",
            {
                "stage": self.name,
                "event": event,
                "detail": detail,
                "seq": header.get("seq"),
                "t_capture_ns": header.get("t_capture_ns"),
            },
        )

    def _needs_landmarks(self, grey: np.ndarray, gap: int) -> bool:
        p = self.params
        if self._points is None or gap > 0 or self._since_run + 1 >= p.detect_every:
            return True
        if p.motion_gate > 0 and self._ref_thumb is not None:
            change = float(np.abs(_thumbnail(grey, self._box) - self._ref_thumb).mean())
            return change > p.motion_gate
        return False

    def process(self, msg: Message) -> list[Message]:
        if msg.topic != "frame":
            return [msg]
        if self._finder is None:
            raise MestreamError("the track stage was fed before open(); call open() first")
        image = msg.arrays.get("image")
        if image is None:
            raise MestreamError(f"frame message seq={msg.header.get('seq')} has no 'image' array; expected one")
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        header = {k: msg.header[k] for k in ("seq", "t_capture_ns", "fps", "source", "gap") if k in msg.header}
        out: list[Message] = []

        fresh = self._needs_landmarks(grey, int(msg.header.get("gap", 0) or 0))
        if fresh:
            points = self._finder.find(image)
            self.landmark_runs += 1
            self._since_run = 0
            if points is None:
                self._points = None
                self._aligner.reset()
            else:
                self._points = points
                self._box = _box(points)
                if self.params.motion_gate > 0:
                    self._ref_thumb = _thumbnail(grey, self._box)
        else:
            self._since_run += 1

        found = self._points is not None
        if found:
            self._misses = 0
            if self._present is not True:
                out.append(self._status("face_found", header, "a face is tracked"))
                self._present = True
        else:
            self._misses += 1
            if self._present is None or (self._present and self._misses >= self.params.lost_after):
                out.append(self._status("face_lost", header, "no face in the frame"))
                self._present = False

        if not found:
            out.append(Message("face", {**header, "found": False, "fresh": fresh}))
            return out

        if fresh:
            step = self._aligner.update(self._points)
            transform, held = step.transform, step.held
        else:
            transform, held = self._aligner.transform, True
        S = self.params.align.size
        arrays = {
            "crop": warp_crop(grey, transform, S),
            "landmarks": apply_transform(transform, self._points).astype(np.float32),
        }
        if self.params.color_crop and image.ndim == 3:
            arrays["crop_color"] = warp_crop(image, transform, S)
        out.append(
            Message(
                "face",
                {
                    **header,
                    "found": True,
                    "box": list(self._box),
                    "transform": [[float(v) for v in row] for row in transform],
                    "held": bool(held),
                    "fresh": fresh,
                },
                arrays,
            )
        )
        return out


# ---- benchmark -------------------------------------------------------------------------------------


def read_frames(path: str | Path, limit: int | None = None, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Decode a video into memory (BGR), optionally resized to size=(w, h), so timing leaves decoding out."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MestreamError(f"cannot open video {path}; expected a readable video file")
    frames = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
    finally:
        cap.release()
    if not frames:
        raise MestreamError(f"video {path} has no frames; expected at least one decodable frame")
    return frames


@dataclass(frozen=True)
class TrackBench:
    frames: int
    seconds: float
    fps: float
    found: int  # frames with a face
    landmark_runs: int  # FaceMesh calls
    jitter: float  # mean abs grey difference between consecutive aligned crops (found pairs only)


def bench_face_tracking(frames: list[np.ndarray], params: TrackParams | None = None, repeat: int = 1) -> TrackBench:
    """Time the stage alone over frames already in memory; one warm-up frame is not timed.

    The frames are looped `repeat` times as one stream (the tracker sees a jump at each wrap, as a cut).
    """
    stage = FaceTracking(params)
    stage.open()
    try:
        stage.process(Message("frame", {"seq": -1, "t_capture_ns": 0}, {"image": frames[0]}))
        stage.landmark_runs = 0
        crops: list[np.ndarray | None] = []
        t0 = time.perf_counter()
        n = 0
        for _ in range(repeat):
            for frame in frames:
                msgs = stage.process(Message("frame", {"seq": n, "t_capture_ns": n}, {"image": frame}))
                face = msgs[-1]
                crops.append(face.arrays["crop"] if face.header["found"] else None)
                n += 1
        seconds = time.perf_counter() - t0
        runs = stage.landmark_runs
    finally:
        stage.close()
    diffs = [
        float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
        for a, b in zip(crops[:-1], crops[1:])
        if a is not None and b is not None
    ]
    return TrackBench(
        frames=n,
        seconds=seconds,
        fps=n / seconds,
        found=sum(c is not None for c in crops),
        landmark_runs=runs,
        jitter=float(np.mean(diffs)) if diffs else float("nan"),
    )


def main(argv: list[str] | None = None) -> None:
    """Print the stage's fps and crop jitter on a video, with and without the skipped-work measures."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("video")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--size", default="640x480", help="resize frames to WxH first ('' keeps the source size)")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    frames = read_frames(args.video, args.limit, size)
    variants = {
        "every frame, no hold": TrackParams(align=AlignParams(move_px=0.0, move_deg=0.0, settle_frames=1)),
        "every frame, steady hold": TrackParams(),
        "shrink to 320": TrackParams(landmarks=LandmarkParams(max_side=320)),
        "every 4th + gate 3": TrackParams(detect_every=4, motion_gate=3.0),
        "every 8th + gate 3": TrackParams(detect_every=8, motion_gate=3.0),
    }
    for label, params in variants.items():
        b = bench_face_tracking(frames, params)
        print(
            f"{label:28s} {b.fps:7.1f} fps  found {b.found}/{b.frames}  FaceMesh runs {b.landmark_runs}"
            f"  crop jitter {b.jitter:.3f} grey levels"
        )


if __name__ == "__main__":
    main()
