"""The one message type that travels between stages, in-process and over ZeroMQ.

On the wire (edge/bus.py) a Message is multipart [topic, header JSON, *raw array buffers]; the header
carries "v" (wire version), "arrays" ([{name, dtype, shape}] in buffer order) and the stage fields below.
Never pickle.

Topics and their fields (header keys; arrays):
- "frame"    capture -> track. seq, t_capture_ns, fps, source, gap (frames lost before this one);
             arrays: image (H, W, 3) BGR uint8 or (H, W) mono uint8.
- "face"     track -> spot. seq, t_capture_ns, fps, found (bool), box [x, y, w, h] in source pixels,
             transform (2x3 list, source -> aligned crop); arrays: crop (S, S) grey uint8 aligned crop,
             landmarks (N, 2) float32 in crop coordinates. When found is False the arrays are absent.
- "interval" spot -> infer. kind ("micro" | "macro"), score, fps, box, onset/apex/offset as
             {"seq", "t_capture_ns"}; arrays: onset (S, S) uint8, apex (S, S) uint8 aligned crops,
             apex_color (S, S, 3) uint8 when the source is colour.
- "status"   any stage -> publish. stage, event ("face_lost", "face_found", "restart", ...), detail.
Published results go out on topics "me.event" and "me.status" as plain JSON (edge/schema/event.schema.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WIRE_VERSION = 1


@dataclass
class Message:
    topic: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
