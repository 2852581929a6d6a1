"""Training inputs of the learned spotter, made by the edge's own code: track -> aligned crops -> window features.

A video is tracked once with the live pipeline's stages (edge Capture + FaceTracking, or a frame folder
fed to FaceTracking) and its aligned crops, landmarks and face boxes are cached on disk (npz, keyed by
the file's path, size and mtime). Windows [i, i + k] whose frames all show the face become features with
edge/spotting/learned.py SpotFeatures (the exact function the spot stage calls), and SOFTNet's
pseudo-label: the fraction of the window covered by an expression (micro or macro; blinks and head
motion are negatives).

    video = track_video(Path("synth.mp4"), cache=Path(".cache"))
    segments = window_features(video, FeatureSpec())       # [(starts (M,), X (M, 3, 42, 42))]
    y = pseudo_labels(segments[0][0], k, truth)            # (M,) float32 in [0, 1]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.messages import Message
from edge.spotting.learned import FeatureSpec, SpotFeatures
from edge.spotting.metrics import KINDS, Interval
from engines.errors import MestreamError
from engines.files import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class TrackedVideo:
    name: str
    fps: float
    found: np.ndarray  # (N,) bool: a face was tracked in frame n
    crops: np.ndarray  # (N, S, S) uint8 aligned grey crops (zeros where no face)
    landmarks: np.ndarray  # (N, 478, 2) float32 in crop pixels (zeros where no face)
    boxes: np.ndarray  # (N, 4) float32 face boxes in the frame

    def face_messages(self) -> list[Message]:
        """The track stage's "face" messages again (gap 0, seq = frame number), for replaying spotters."""
        out = []
        for n in range(len(self.found)):
            header = {"seq": n, "t_capture_ns": int(round(n * 1e9 / self.fps)), "fps": self.fps, "gap": 0,
                      "found": bool(self.found[n])}
            if not self.found[n]:
                out.append(Message("face", header))
                continue
            header["box"] = [float(v) for v in self.boxes[n]]
            out.append(Message("face", header, {"crop": self.crops[n], "landmarks": self.landmarks[n]}))
        return out


class FrameList:
    """A source stage over frames numbered from 0 at a fixed rate: images in memory (composed test videos)."""

    name = "capture"

    def __init__(self, frames: list[np.ndarray], fps: float, source: str = "memory") -> None:
        self.frames = frames
        self.fps = fps
        self.source = source
        self._i = 0

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> np.ndarray:
        return self.frames[i]

    def open(self) -> None:
        self._i = 0

    def read(self) -> Message | None:
        if self._i >= len(self):
            return None
        msg = Message("frame", {"seq": self._i, "t_capture_ns": int(self._i * 1e9 / self.fps), "fps": self.fps,
                                "source": self.source, "gap": 0}, {"image": self.image(self._i)})
        self._i += 1
        return msg

    def close(self) -> None:
        pass


class FrameFolder(FrameList):
    """A source stage over a folder of frame images (SAMM-LV, CAS(ME)^2 rawpic), read in natural order."""

    def __init__(self, folder: Path, fps: float) -> None:
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise MestreamError(f"frame folder {folder} holds no images; expected {', '.join(IMAGE_SUFFIXES)} frames")

        def number(p: Path) -> tuple:
            digits = "".join(c if c.isdigit() else " " for c in p.stem).split()
            return (int(digits[-1]) if digits else -1, p.name)

        self.files = sorted(files, key=number)
        super().__init__([], fps, str(folder))

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> np.ndarray:
        import cv2

        image = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise MestreamError(f"cannot decode frame {self.files[i]}; expected a readable image")
        return image


def _cache_key(path: Path) -> str:
    st = path.stat()
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|v1"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def track_video(path: Path, cache: Path | None = None, fps: float | None = None) -> TrackedVideo:
    """Aligned crops of every frame of a video file or frame folder (cached under `cache` when given)."""
    path = Path(path)
    if not path.exists():
        raise MestreamError(f"video {path} does not exist; expected a video file or a folder of frames")
    if path.is_dir() and fps is None:
        raise MestreamError(f"{path} is a frame folder; give its frame rate (e.g. 30 for CAS(ME)^2, 200 for SAMM-LV)")
    target = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / f"{path.resolve().stem}-{_cache_key(path)}.npz"
        if target.is_file():
            return load_tracked(target, path.stem)[0]
    video = _track(path, fps)
    if target is not None:
        save_tracked(target, video)
    return video


def save_tracked(target: Path, video: TrackedVideo, **extra: np.ndarray) -> None:
    """A tracked video (and any extra arrays) as npz, written to a temporary name and renamed into place."""
    with atomic_path(target) as tmp:
        np.savez(tmp, fps=video.fps, found=video.found, crops=video.crops, landmarks=video.landmarks,
                 boxes=video.boxes, **extra)


def load_tracked(target: Path, name: str) -> tuple[TrackedVideo, dict[str, np.ndarray]]:
    """What save_tracked wrote: the video, and the extra arrays by name."""
    with np.load(target) as z:
        video = TrackedVideo(name, float(z["fps"]), z["found"], z["crops"], z["landmarks"], z["boxes"])
        extra = {k: z[k] for k in z.files if k not in ("fps", "found", "crops", "landmarks", "boxes")}
    return video, extra


def track_frames(name: str, frames: list[np.ndarray], fps: float) -> TrackedVideo:
    """Aligned crops of frames in memory, tracked by the live track stage (no cache)."""
    return _track_source(FrameList(frames, fps, name), name, fps)


def _track(path: Path, fps: float | None) -> TrackedVideo:
    from edge.stages.capture import Capture

    source = FrameFolder(path, fps) if path.is_dir() else Capture(str(path), fast=True)
    return _track_source(source, path.stem, fps)


def _track_source(source, name: str, fps: float | None) -> TrackedVideo:
    from edge.stages.base import run_chain
    from edge.stages.face_tracking import FaceTracking

    faces = [m for m in run_chain(source, [FaceTracking()]) if m.topic == "face"]
    if not faces:
        raise MestreamError(f"no frames tracked in {name}; expected a readable video")
    rate = float(fps or faces[0].header.get("fps") or 0.0) or 30.0
    n = int(faces[-1].header["seq"]) + 1
    size = next((m.arrays["crop"].shape[0] for m in faces if "crop" in m.arrays), 128)
    found = np.zeros(n, bool)
    crops = np.zeros((n, size, size), np.uint8)
    marks = np.zeros((n, 478, 2), np.float32)
    boxes = np.zeros((n, 4), np.float32)
    for m in faces:
        i = int(m.header["seq"])
        if m.header.get("found") and "crop" in m.arrays:
            found[i] = True
            crop = m.arrays["crop"]
            crops[i] = crop if crop.ndim == 2 else crop.mean(axis=2).astype(np.uint8)
            lm = m.arrays.get("landmarks")
            if lm is not None and lm.shape[0] >= 478:
                marks[i] = lm[:478, :2]
            box = m.header.get("box") or [0, 0, 0, 0]
            boxes[i] = box[:4]
    return TrackedVideo(name, rate, found, crops, marks, boxes)


def window_features(video: TrackedVideo, spec: FeatureSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """Features of every window [i, i + k] inside a stretch of frames that all show the face.

    Returns one (starts (M,) int, X (M, 3, roi, roi) float32) per stretch long enough for a window, in
    order: the stage restarts its window when the face is lost, so windows never straddle a loss.
    """
    k = spec.k(video.fps)
    features = SpotFeatures(spec)
    out = []
    n = len(video.found)
    i = 0
    while i < n:
        if not video.found[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and video.found[j + 1]:
            j += 1
        if j - i >= k:
            small = [features.prepare(video.crops[t]) for t in range(i, j + 1)]
            starts = np.arange(i, j - k + 1)
            x = np.stack([features.pair(small[s - i], small[s - i + k]) for s in starts])
            out.append((starts, x))
        i = j + 1
    return out


def pseudo_labels(starts: np.ndarray, k: int, truth: list[Interval]) -> np.ndarray:
    """SOFTNet's soft pseudo-label of window [i, i + k]: the largest share of it an expression covers.

    Share = overlap / min(window length, expression length), so a window inside an expression, or one
    holding a whole short expression, scores 1. Only micro and macro count; blinks and head moves are 0.
    """
    y = np.zeros(len(starts), np.float32)
    lo = np.asarray(starts)
    hi = lo + k
    for t in truth:
        if t.kind not in KINDS:
            continue
        inter = np.clip(np.minimum(hi, t.offset) - np.maximum(lo, t.onset) + 1, 0, None)
        share = inter / min(k + 1, t.frames)
        y = np.maximum(y, share.astype(np.float32))
    return y
