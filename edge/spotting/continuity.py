"""Whether a spotter's sliding window still continues the frames before it, or must start again.

Both spotters (edge/spotting/regional.py and edge/spotting/learned.py) compare frames k apart, so a
gap in the stream, a jump in sequence numbers or a changed frame rate would compare unrelated frames:
they restart their window instead, and say why on me.status.
"""

from __future__ import annotations

from typing import Any


def restart_reason(header: dict[str, Any], last_seq: int | None, started: bool, known_fps: float | None) -> str | None:
    """Why the face frame with this header cannot continue the window (None: it can).

    `last_seq` is the previous frame's sequence number, `started` whether the window holds frames yet and
    `known_fps` the rate the window was started at (None before the first frame).
    """
    seq = int(header["seq"])
    fps = float(header.get("fps") or 0.0)
    if int(header.get("gap", 0) or 0) > 0:
        return f"gap of {header['gap']} frames before seq {seq}"
    if last_seq is not None and started and seq != last_seq + 1:
        return f"sequence jumped from {last_seq} to {seq}"
    if known_fps is not None and fps > 0 and abs(fps - known_fps) > 0.05 * known_fps:
        return f"fps changed from {known_fps:g} to {fps:g}"
    return None


def starting_fps(header: dict[str, Any]) -> float:
    """The frame rate a window starts at: the header's, or 30 where the source states none."""
    fps = float(header.get("fps") or 0.0)
    return fps if fps > 0 else 30.0
