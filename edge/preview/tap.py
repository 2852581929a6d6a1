"""The preview tap: what one pipeline process shows to `mestream preview`, at a low rate, never blocking.

A process hosts a tap only when the run asked for a preview. After each message its stages handled, the
process calls `offer(msg, outputs)`; the tap picks what people want to see:

- "pv.frame": the source frame (JPEG, longer side at most `max_side`) with the face box and the landmarks
  in source pixels, and the aligned crop (JPEG); at most `fps` per second, taken where the track stage
  runs (its input is the frame, its output the face).
- "pv.signal": the spotter's motion signal and adaptive threshold, one point per frame (the spot stage
  writes them into the face message it consumes), sent in batches at most `fps` per second.
- "pv.event" / "pv.status": each published event and status, as they come (rare).

Each message names its source ("source"), so that with several sources the viewer keeps each apart.

Frames go out on a PUB socket with a send queue of one (latest only: a viewer that falls behind sees the
newest frame, not a backlog) and every send is non-blocking, so a slow or absent viewer costs the pipeline
nothing but the JPEG encoding, capped at `fps` frames a second.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import zmq

from edge import bus
from edge.messages import Message

log = logging.getLogger(__name__)

_MAX_SIGNAL_BATCH = 1024  # points per batch at most (~25 kB of header): a file read --fast sends batches sooner


def landmarks_in_source(landmarks: np.ndarray, transform) -> np.ndarray:
    """Crop-pixel landmarks (N, 2) back to source pixels through the inverse of the 2x3 source->crop transform."""
    t = np.asarray(transform, dtype=np.float64)
    a, b = t[:, :2], t[:, 2]
    return ((np.asarray(landmarks, dtype=np.float64) - b) @ np.linalg.inv(a).T).astype(np.float32)


def encode_jpeg(image: np.ndarray, max_side: int, quality: int) -> tuple[np.ndarray, float]:
    """JPEG bytes as a uint8 array, after shrinking the longer side to max_side; returns (bytes, scale)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w)) if max_side > 0 else 1.0
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("JPEG encoding failed")
    return buf.reshape(-1), scale


class PreviewTap:
    """Built by a pipeline process when its plan has a preview endpoint; `offer` after every message."""

    def __init__(self, ctx: zmq.Context, endpoint: str, process: str, *, fps: float = 10.0,
                 max_side: int = 640, quality: int = 75, source: str = "") -> None:
        self.process = process
        self.source = source  # the source's name this process's chain serves ("" = shared by all: its messages name theirs)
        self.period_s = 1.0 / fps
        self.max_side = max_side
        self.quality = quality
        # frames: queue of one, the newest wins; results: room for a burst of events and status lines
        self._frames = bus.open_socket(ctx, zmq.PUB, connect=endpoint, hwm=1)
        self._results = bus.open_socket(ctx, zmq.PUB, connect=endpoint, hwm=64)
        self._last_frame = -float("inf")
        self._last_signal = -float("inf")
        self._points: list[list] = []
        self._fps = 0.0
        self.sent = {"frame": 0, "signal": 0, "event": 0, "status": 0}
        self.dropped = 0

    def close(self) -> None:
        self.flush()
        self._frames.close(0)
        self._results.close(linger=200)  # the last signal batch and events may still be on their way

    # -- what the process calls -------------------------------------------------------------------
    def offer(self, msg: Message | None, outputs: list[Message]) -> None:
        now = time.monotonic()
        if msg is not None and msg.topic == "frame" and now - self._last_frame >= self.period_s:
            face = next((m for m in outputs if m.topic == "face"), None)
            if face is not None and "image" in msg.arrays:
                self._last_frame = now
                self._send(self._frames, self.frame_message(msg, face), "frame")
        if msg is not None and msg.topic == "face" and "spot_signal" in msg.header:
            h = msg.header
            self._fps = float(h.get("fps") or self._fps)
            self._points.append([int(h["seq"]), h["spot_signal"], h.get("spot_threshold")])
        if self._points and (now - self._last_signal >= self.period_s or len(self._points) >= _MAX_SIGNAL_BATCH):
            self._last_signal = now
            self.flush()
        for m in outputs:
            if m.topic in ("me.event", "me.status"):
                header = dict(m.header)
                if self.source:
                    header.setdefault("source", self.source)  # stamped when the process sends it, after this copy
                self._send(self._results, Message("pv." + m.topic[3:], header), m.topic[3:])

    def flush(self) -> None:
        """Send the signal points collected since the last batch (also at end of stream)."""
        if not self._points:
            return
        points, self._points = self._points, []
        self._send(self._results, Message("pv.signal", {"process": self.process, "source": self.source, "fps": self._fps,
                                                         "points": points}), "signal")

    # -- messages -----------------------------------------------------------------------------------
    def frame_message(self, frame: Message, face: Message) -> Message:
        image = frame.arrays["image"]
        jpeg, _ = encode_jpeg(image, self.max_side, self.quality)
        h = face.header
        header: dict[str, Any] = {
            "process": self.process,
            "source": self.source or h.get("source", ""),
            "seq": h.get("seq"),
            "t_capture_ns": h.get("t_capture_ns"),
            "fps": h.get("fps"),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "found": bool(h.get("found")),
        }
        arrays = {"jpeg": jpeg}
        if header["found"]:
            header["box"] = [int(v) for v in h.get("box", [])]
            if "landmarks" in face.arrays and "transform" in h:
                arrays["landmarks"] = landmarks_in_source(face.arrays["landmarks"], h["transform"])
            crop = face.arrays.get("crop_color", face.arrays.get("crop"))
            if crop is not None:
                arrays["crop"], _ = encode_jpeg(crop, 0, 90)
        return Message("pv.frame", header, arrays)

    def _send(self, sock: zmq.Socket, msg: Message, kind: str) -> None:
        try:
            bus.send(sock, msg, zmq.NOBLOCK)
            self.sent[kind] += 1
        except zmq.Again:
            self.dropped += 1  # nobody is reading fast enough: the preview loses it, the pipeline does not wait
