"""The track stage timed alone over frames already in memory, with its FaceMesh calls, crop jitter and
transforms (benchmarks/tracking_policies.py compares policies with it), and the video reader it uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.messages import Message
from edge.perception.landmarks import FaceLandmarks
from edge.stages.face_tracking import FaceTracking, TrackParams
from engines.errors import MestreamError

JITTER_SKIP = 5  # frames left out of the jitter figure while the first face is acquired


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
    seconds: float  # wall time of the timed loop
    cpu_seconds: float  # CPU time of this process (all its threads) over the same loop
    fps: float  # frames / seconds
    found: int  # frames with a face
    landmark_runs: int  # FaceMesh calls
    jitter: float  # mean abs grey difference of consecutive aligned crops (found pairs, from frame 5 on)
    transforms: tuple  # per frame: the 2x3 transform used, or None without a face


def bench_face_tracking(frames: list[np.ndarray], params: TrackParams | None = None) -> TrackBench:
    """Time the stage alone over frames already in memory, as one stream; a warm-up stage opens first.

    The warm-up runs FaceMesh once on another instance so that one-off costs (graph start, XNNPACK
    set-up) fall outside the timed loop; the timed stage then starts cold on frame 0 like a live one.
    """
    with FaceLandmarks((params or TrackParams()).landmarks) as warm:
        warm.find(frames[0])
    stage = FaceTracking(params)
    stage.open()
    crops: list[np.ndarray | None] = []
    transforms: list[np.ndarray | None] = []
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for n, frame in enumerate(frames):
            face = stage.process(Message("frame", {"seq": n, "t_capture_ns": n}, {"image": frame}))[-1]
            found = face.header["found"]
            crops.append(face.arrays["crop"] if found else None)
            transforms.append(np.array(face.header["transform"]) if found else None)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        runs = stage.landmark_runs
    finally:
        stage.close()
    # FaceMesh's first frames on a new face are rough (a few px of settling): jitter is the steady state
    skip = JITTER_SKIP
    diffs = [
        float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
        for a, b in zip(crops[skip:-1], crops[skip + 1 :])
        if a is not None and b is not None
    ]
    return TrackBench(
        frames=len(frames),
        seconds=seconds,
        cpu_seconds=cpu,
        fps=len(frames) / seconds,
        found=sum(c is not None for c in crops),
        landmark_runs=runs,
        jitter=float(np.mean(diffs)) if diffs else float("nan"),
        transforms=tuple(transforms),
    )
