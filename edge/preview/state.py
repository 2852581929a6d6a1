"""What a preview viewer keeps of the pipeline's preview stream, and the JSON the web page polls.

Only the latest frame and crop (JPEG bytes, served as images), the last `signal_points` points of the
motion signal with their thresholds, the last `max_events` events and the latest status lines. Messages
come from a ZeroMQ thread and snapshots are read by HTTP threads, so everything goes through one lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from edge.messages import Message


def _finite(value) -> float | None:
    """JSON has no Infinity/NaN: the threshold is infinite while the spotter warms up."""
    if value is None:
        return None
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


class PreviewState:
    def __init__(self, signal_points: int = 600, max_events: int = 50) -> None:
        self._lock = threading.Lock()
        self.frame_id = 0
        self.frame_jpeg = b""
        self.crop_jpeg = b""
        self._recent: deque[tuple[int, bytes, bytes]] = deque(maxlen=4)  # so a page gets the image its poll named
        self.frame: dict[str, Any] = {}
        self.signal: deque[list] = deque(maxlen=signal_points)
        self.signal_fps = 0.0
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.status: dict[str, dict[str, Any]] = {}  # latest per (stage, event) kind, e.g. face_lost, metrics
        self.received = 0
        self.last_message_s = 0.0

    def apply(self, msg: Message) -> None:
        with self._lock:
            self.received += 1
            self.last_message_s = time.monotonic()
            if msg.topic == "pv.frame":
                self._frame(msg)
            elif msg.topic == "pv.signal":
                self.signal_fps = float(msg.header.get("fps") or self.signal_fps)
                for point in msg.header.get("points", []):
                    if isinstance(point, list) and len(point) == 3:
                        seq, s, thr = point
                        if self.signal and seq <= self.signal[-1][0]:
                            self.signal.clear()  # the source restarted (a new run): start the plot again
                        self.signal.append([int(seq), _finite(s), _finite(thr)])
            elif msg.topic == "pv.event":
                self.events.append(_event_row(msg.header))
            elif msg.topic == "pv.status":
                h = msg.header
                self.status[str(h.get("event", "?"))] = {"stage": h.get("stage"), "event": h.get("event"), "detail": h.get("detail", "")}

    def _frame(self, msg: Message) -> None:
        h = msg.header
        jpeg = msg.arrays.get("jpeg")
        if jpeg is None:
            return
        self.frame_id += 1
        self.frame_jpeg = bytes(jpeg)
        if "crop" in msg.arrays:
            self.crop_jpeg = bytes(msg.arrays["crop"])
        self._recent.append((self.frame_id, self.frame_jpeg, self.crop_jpeg))
        marks = msg.arrays.get("landmarks")
        self.frame = {
            "id": self.frame_id,
            "seq": h.get("seq"),
            "width": h.get("width"),
            "height": h.get("height"),
            "found": bool(h.get("found")),
            "box": h.get("box"),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in marks] if marks is not None else [],
        }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            age = time.monotonic() - self.last_message_s if self.last_message_s else None
            return {
                "frame": dict(self.frame),
                "has_crop": bool(self.crop_jpeg),
                "signal": list(self.signal),
                "signal_fps": self.signal_fps,
                "events": list(self.events),
                "status": list(self.status.values()),
                "received": self.received,
                "idle_s": round(age, 2) if age is not None else None,
            }

    def images(self, frame_id: int | None = None) -> tuple[bytes, bytes]:
        """(frame, crop) JPEGs of frame `frame_id` while it is among the last few, else the latest."""
        with self._lock:
            for fid, frame, crop in self._recent:
                if fid == frame_id:
                    return frame, crop
            return self.frame_jpeg, self.crop_jpeg


def _event_row(e: dict[str, Any]) -> dict[str, Any]:
    """The fields the page shows of a published event (edge/schema/event.schema.json)."""
    probs = e.get("probabilities") or {}
    label = str(e.get("label", "?"))
    return {
        "kind": e.get("kind"),
        "label": label,
        "confidence": _finite(probs.get(label)),
        # the active action units with their probabilities, in FACS order
        "action_units": [{"name": str(name), "p": _finite((e.get("action_units") or {}).get(name))}
                         for name in (e.get("action_units_active") or []) if isinstance(name, str)],
        "spot_score": _finite(e.get("spot_score")),
        "onset": (e.get("onset") or {}).get("frame"),
        "apex": (e.get("apex") or {}).get("frame"),
        "offset": (e.get("offset") or {}).get("frame"),
        "duration_s": _finite(e.get("duration_s")),
    }
