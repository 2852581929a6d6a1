"""The one message type that travels between stages, in-process and over ZeroMQ.

On the wire (edge/bus.py) a Message is multipart [topic, header JSON, *raw array buffers]; the header
carries "v" (wire version), "arrays" ([{name, dtype, shape}] in buffer order) and the stage fields below.
Never pickle.

Topics and their fields (header keys; arrays):
- "frame"    capture -> track. seq, t_capture_ns, fps, source, gap (frames lost before this one);
             arrays: image (H, W, 3) BGR uint8 or (H, W) mono uint8. Between processes on one host the
             image may instead sit in a shared-memory ring: no image array, and header "shm" =
             {segment, slot, gen, shape, dtype} (edge/shared_frames.py); the receiving host puts it back.
- "face"     track -> spot. seq, t_capture_ns, fps, face_id, found (bool), box [x, y, w, h] in source pixels,
             transform (2x3 list, source -> aligned crop); arrays: crop (S, S) grey uint8 aligned crop,
             landmarks (N, 2) float32 in crop coordinates. When found is False the arrays are absent. One
             message per face of a frame (the same seq, face_id ascending); a frame with no face at all
             gives one found=False message without face_id.
- "interval" spot -> infer. kind ("micro" | "macro"), score, fps, face_id, box, onset/apex/offset as
             {"seq", "t_capture_ns"}; arrays: onset (S, S) uint8, apex (S, S) uint8 aligned crops,
             apex_color (S, S, 3) uint8 when the source is colour.
- "candidate" spot -> infer, ahead of an "interval" (speculation): once the displacement has fallen clearly
             below its peak, the apex and onset are fixed unless a higher peak comes, so infer can compute
             the flow before the offset. score, fps, box, onset/apex as {"seq", "t_capture_ns"}; arrays as
             an interval's. Never published; an "interval" with the same onset/apex crops reuses the result.
- "event"    classify -> publish. The header IS the published event (edge/schema/event.schema.json).
- "status"   any stage -> publish. stage, event ("face_lost", "face_found", "restart", ...), detail; a face's
             status (track's face_found / face_lost, spot's restart) also names its face_id (track's: and box).
- "eos"      end of stream, sent by a process after its last message; every process flushes its stages,
             forwards "eos" and exits 0. Never published.
Every process host also adds "stamps": [[process, t_in_ns, t_out_ns], ...] (monotonic clock, which is
system-wide on Linux, so it compares across processes) and sets "gap" when it sees a hole in seq. A
per-frame message may carry "sender_dropped" (frames its sending process dropped right before it). The
receiving entrance (edge/entrance.py) takes "shm" and "sender_dropped" off the header into its envelope:
stages never see them.
Published results go out on topics "me.event" and "me.status" as plain JSON (edge/schema/event.schema.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WIRE_VERSION = 1

# Topics whose messages come one per source frame, so a hole in "seq" means frames were lost.
PER_FRAME_TOPICS = frozenset({"frame", "face"})
TOPICS = frozenset({"frame", "face", "candidate", "interval", "event", "status", "eos"})

# What goes out on the PUB socket.
PUBLISHED_EVENT_TOPIC = "me.event"
PUBLISHED_STATUS_TOPIC = "me.status"


@dataclass
class Message:
    topic: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def status(stage: str, event: str, detail: str = "", **fields: Any) -> Message:
    """A status message ("face_lost", "restart", ...) on its way to the publisher."""
    return Message("status", {"stage": stage, "event": event, "detail": detail, **fields})


def end_of_stream(source: str) -> Message:
    return Message("eos", {"source": source})
