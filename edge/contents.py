"""What each topic must carry, checked at every entrance after the wire format (edge/bus.py) has passed.

bus.decode proves a message is well-formed: sizes, dtypes and shapes agree with its buffers. This proves
it makes sense to the stage that will get it: a frame holds one 8-bit image, a found face an 8-bit
square crop, an interval two crops of one size, and the header fields the host and stages read are of
the right type. A message that fails is counted and dropped like any malformed one; it never reaches a
stage, where a wrong shape would crash the process (restart) or a stage's own error could be taken for
a user mistake and stop the run.

    problem = content_problem(msg)   # "" when the message is fit for its stage
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge.messages import Message

MIN_SIDE = 16  # smaller images hold no face; FaceMesh and the flow pyramids are not meant for them
MAX_STAMPS = 16  # hops a message may have taken


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _image_problem(name: str, a: np.ndarray | None, *, channels: tuple[int, ...]) -> str:
    if a is None:
        return f"no {name!r} array"
    if a.dtype != np.uint8:
        return f"{name!r} is {a.dtype}, expected uint8"
    ok_shape = (a.ndim == 2 and 0 in channels) or (a.ndim == 3 and a.shape[2] in channels)
    if not ok_shape:
        return f"{name!r} has shape {list(a.shape)}, expected (H, W)" + (" or (H, W, 3)" if 3 in channels else "")
    if min(a.shape[:2]) < MIN_SIDE:
        return f"{name!r} is {a.shape[1]}x{a.shape[0]}, smaller than {MIN_SIDE}x{MIN_SIDE}"
    return ""


def _crop_problem(name: str, a: np.ndarray | None, side: int | None = None) -> str:
    problem = _image_problem(name, a, channels=(0,))
    if problem:
        return problem
    if a.shape[0] != a.shape[1] or (side is not None and a.shape[0] != side):
        return f"{name!r} is {a.shape[1]}x{a.shape[0]}, expected a square crop" + (f" of {side}" if side else "")
    return ""


def _colour_crop_problem(name: str, a: np.ndarray | None, side: int) -> str:
    if a is None:
        return ""
    if a.dtype != np.uint8 or a.shape != (side, side, 3):
        return f"{name!r} is {a.dtype} {list(a.shape)}, expected uint8 [{side}, {side}, 3]"
    return ""


def _common_problem(h: dict[str, Any]) -> str:
    if "gap" in h and not (_is_int(h["gap"]) and h["gap"] >= 0):
        return f"gap = {h['gap']!r}, expected an integer >= 0"
    if "t_capture_ns" in h and not _is_int(h["t_capture_ns"]):
        return f"t_capture_ns = {h['t_capture_ns']!r}, expected an integer"
    if "fps" in h and not (_is_number(h["fps"]) and h["fps"] >= 0):
        return f"fps = {h['fps']!r}, expected a number >= 0"
    stamps = h.get("stamps", [])
    if not isinstance(stamps, list) or len(stamps) > MAX_STAMPS or not all(isinstance(s, list) and len(s) == 3 for s in stamps):
        return f"stamps is not a list of at most {MAX_STAMPS} [process, t_in, t_out]"
    return ""


def _point_problem(h: dict[str, Any], key: str) -> str:
    p = h.get(key)
    if not isinstance(p, dict) or not _is_int(p.get("seq")) or not _is_int(p.get("t_capture_ns", 0)):
        return f"{key} = {p!r}, expected {{seq, t_capture_ns}} integers"
    return ""


def content_problem(msg: Message) -> str:
    """Why this message cannot go to a stage, or "" when it can."""
    h, arrays = msg.header, msg.arrays
    problem = _common_problem(h)
    if problem:
        return problem
    if msg.topic == "frame":
        return _image_problem("image", arrays.get("image"), channels=(0, 3))
    if msg.topic == "face":
        found = h.get("found", False)
        if not isinstance(found, bool):
            return f"found = {found!r}, expected true or false"
        face_id = h.get("face_id", 0)
        if not isinstance(face_id, int) or isinstance(face_id, bool) or face_id < 0:
            return f"face_id = {face_id!r}, expected an integer >= 0"
        if not found:
            return ""
        crop = arrays.get("crop")
        problem = _crop_problem("crop", crop)
        if problem:
            return problem
        problem = _colour_crop_problem("crop_color", arrays.get("crop_color"), crop.shape[0])
        if problem:
            return problem
        marks = arrays.get("landmarks")
        if marks is not None and (marks.dtype != np.float32 or marks.ndim != 2 or marks.shape[1] != 2):
            return f"'landmarks' is {marks.dtype} {list(marks.shape)}, expected float32 (N, 2)"
        box = h.get("box", [0, 0, 0, 0])
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            return f"box = {box!r}, expected 4 numbers"
        return ""
    if msg.topic in ("interval", "candidate"):  # a candidate is an interval without its offset yet
        for key in ("onset", "apex", "offset") if msg.topic == "interval" else ("onset", "apex"):
            problem = _point_problem(h, key)
            if problem:
                return problem
        if "score" in h and not (h["score"] is None or _is_number(h["score"])):
            return f"score = {h['score']!r}, expected a number"  # classify compares it with min_score
        onset = arrays.get("onset")
        problem = _crop_problem("onset", onset) or _crop_problem("apex", arrays.get("apex"), onset.shape[0] if onset is not None else None)
        if problem:
            return problem
        return _colour_crop_problem("apex_color", arrays.get("apex_color"), onset.shape[0])
    if msg.topic == "event":
        for key in ("onset", "apex", "offset", "latency_ms", "probabilities", "action_units"):
            if key in h and not isinstance(h[key], dict):
                return f"{key} = {h[key]!r}, expected an object"
        if "action_units_active" in h and not isinstance(h["action_units_active"], list):
            return f"action_units_active = {h['action_units_active']!r}, expected a list"
        return ""
    if msg.topic == "status":
        for key in ("stage", "event", "detail"):
            if key in h and not isinstance(h[key], str):
                return f"{key} = {h[key]!r}, expected a string"
        return ""
    return ""
