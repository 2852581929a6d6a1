"""What a preview viewer keeps of the pipeline's preview stream, and the JSON the web page polls.

Per source (every preview message names its source): only the latest frame and crop (JPEG bytes, served as
images) and the last `signal_points` points of the motion signal with their thresholds; over all sources the
last `max_events` events and the latest status lines, each naming its source. Messages come from a ZeroMQ
thread and snapshots are read by HTTP threads, so everything goes through one lock.
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


class SourceView:
    """One source's latest frame and crop (with the last few, so a page gets the image its poll named) and its signal."""

    def __init__(self, signal_points: int) -> None:
        self.frame_jpeg = b""
        self.crop_jpeg = b""
        self.recent: deque[tuple[int, bytes, bytes]] = deque(maxlen=4)
        self.frame: dict[str, Any] = {}
        self.signal: deque[list] = deque(maxlen=signal_points)
        self.signal_fps = 0.0


class PreviewState:
    """Every source's view, in the order their first message came; events and statuses name their source."""

    def __init__(self, signal_points: int = 600, max_events: int = 50) -> None:
        self._lock = threading.Lock()
        self._signal_points = signal_points
        self.frame_id = 0  # over all sources: an id names one image
        self.sources: dict[str, SourceView] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.status: dict[tuple[str, str], dict[str, Any]] = {}  # latest per (source, event) kind, e.g. face_lost, metrics
        self.received = 0
        self.last_message_s = 0.0

    def _view(self, source: Any) -> SourceView:
        name = str(source or "")
        if name not in self.sources:
            self.sources[name] = SourceView(self._signal_points)
        return self.sources[name]

    def apply(self, msg: Message) -> None:
        with self._lock:
            self.received += 1
            self.last_message_s = time.monotonic()
            h = msg.header
            if msg.topic == "pv.frame":
                self._frame(msg)
            elif msg.topic == "pv.signal":
                view = self._view(h.get("source"))
                view.signal_fps = float(h.get("fps") or view.signal_fps)
                for point in h.get("points", []):
                    if isinstance(point, list) and len(point) == 3:
                        seq, s, thr = point
                        if view.signal and seq <= view.signal[-1][0]:
                            view.signal.clear()  # the source restarted (a new run): start the plot again
                        view.signal.append([int(seq), _finite(s), _finite(thr)])
            elif msg.topic == "pv.event":
                self.events.append(_event_row(h))
            elif msg.topic == "pv.status":
                source = str(h.get("source") or "")
                self.status[(source, str(h.get("event", "?")))] = {"source": source, "stage": h.get("stage"),
                                                                   "event": h.get("event"), "detail": h.get("detail", "")}

    def _frame(self, msg: Message) -> None:
        h = msg.header
        jpeg = msg.arrays.get("jpeg")
        if jpeg is None:
            return
        view = self._view(h.get("source"))
        self.frame_id += 1
        view.frame_jpeg = bytes(jpeg)
        if "crop" in msg.arrays:
            view.crop_jpeg = bytes(msg.arrays["crop"])
        view.recent.append((self.frame_id, view.frame_jpeg, view.crop_jpeg))
        marks = msg.arrays.get("landmarks")
        view.frame = {
            "id": self.frame_id,
            "seq": h.get("seq"),
            "width": h.get("width"),
            "height": h.get("height"),
            "found": bool(h.get("found")),
            "box": h.get("box"),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in marks] if marks is not None else [],
        }

    def names(self) -> list[str]:
        with self._lock:
            return list(self.sources)

    def snapshot(self, source: str | None = None) -> dict[str, Any]:
        """What the page shows of one source (None: the first one seen); KeyError for a source never seen
        once others have been (before any message, every name is still possible: an empty view)."""
        with self._lock:
            age = time.monotonic() - self.last_message_s if self.last_message_s else None
            names = list(self.sources)
            if source is None:
                source = names[0] if names else ""
            elif names and source not in self.sources:
                raise KeyError(source)
            view = self.sources.get(source) or SourceView(0)
            one = len(names) < 2  # one source: everything is its own, whatever name its messages carry

            def mine(x: dict[str, Any]) -> bool:
                return one or x.get("source", "") in ("", source)

            return {
                "source": source,
                "sources": names,
                "frame": dict(view.frame),
                "has_crop": bool(view.crop_jpeg),
                "signal": list(view.signal),
                "signal_fps": view.signal_fps,
                "events": [e for e in self.events if mine(e)],
                "status": [x for x in self.status.values() if mine(x)],
                "received": self.received,
                "idle_s": round(age, 2) if age is not None else None,
            }

    def images(self, frame_id: int | None = None, source: str | None = None) -> tuple[bytes, bytes]:
        """(frame, crop) JPEGs of frame `frame_id` while it is among the last few, else the latest of `source`
        (None: the first source seen)."""
        with self._lock:
            views = list(self.sources.values()) if frame_id is not None else []
            for view in views:
                for fid, frame, crop in view.recent:
                    if fid == frame_id:
                        return frame, crop
            view = self.sources.get(source) if source is not None else next(iter(self.sources.values()), None)
            return (view.frame_jpeg, view.crop_jpeg) if view else (b"", b"")

    def latest_frames(self) -> list[tuple[str, bytes, dict[str, Any]]]:
        """(source, frame JPEG, frame fields) of every source that has a frame, for the tiled view."""
        with self._lock:
            return [(name, v.frame_jpeg, dict(v.frame)) for name, v in self.sources.items() if v.frame_jpeg]


def _event_row(e: dict[str, Any]) -> dict[str, Any]:
    """The fields the page shows of a published event (edge/schema/event.schema.json)."""
    probs = e.get("probabilities") or {}
    label = str(e.get("label", "?"))
    return {
        "source": str(e.get("source") or ""),
        "face_id": e.get("face_id"),
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
