"""spot: the spot stage, one spotter per face; edge/spotting holds the spotters and SpotParams.method picks one.

The track stage sends one "face" message per face per frame, each with its face_id (edge/stages/
face_tracking.py). Every face gets its own spotter, made on the face's first found frame, so each window
holds one face's crops only. A face message without face_id (no face on that frame at all) goes to every
spotter: each restarts its window, as a lost face does. A spotter whose face has not been found for
FORGET_S is flushed and dropped. Whatever a spotter sends (interval, candidate, status) leaves with its
face_id in the header.

    stage = FaceSpotters(SpotParams())      # what build() makes from [stages.spot]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.messages import Message
from edge.spotting import make_spotter
from edge.spotting.continuity import starting_fps
from edge.spotting.params import SpotParams
from edge.stages.base import flush_stage
from edge.topology import stage_options_of

if TYPE_CHECKING:
    from edge.process import RunOptions

# Seconds a face may stay unfound before its spotter goes: longer than the track stage keeps its id open
# (TrackParams.forget_after frames), so a face that comes back under its id finds its spotter (a learned
# one loads its model when made).
FORGET_S = 2.0


def build(options: dict[str, Any], run: RunOptions | None, resume_seq: int = 0) -> FaceSpotters:
    """The spot stage from its [stages.spot] table."""
    return FaceSpotters(stage_options_of("spot", options, SpotParams))


class FaceSpotters:
    """Stage "spot": routes each face's messages to that face's spotter (see the module doc)."""

    name = "spot"

    def __init__(self, params: SpotParams | None = None, record_trace: bool = False) -> None:
        self.params = params or SpotParams()
        # (seq, s, threshold) per analysed frame, shared by every face's spotter (set before the first face)
        self.trace: list | None = [] if record_trace else None
        self.spotters: dict[int, Any] = {}  # face_id -> its spotter
        self._last_found: dict[int, int] = {}  # face_id -> seq of the last frame it was found on

    def new_spotter(self):
        """A spotter for one face, not yet opened: SpotParams.method's (edge/spotting/__init__.py)."""
        spotter = make_spotter(self.params)
        if self.trace is not None:
            spotter.trace = self.trace
        return spotter

    @property
    def stride(self) -> int:
        """Every how many frames the spotters analyse one (the learned spotter reads every frame)."""
        return max((getattr(s, "stride", 1) for s in self.spotters.values()), default=1)

    def open(self) -> None:
        self.spotters.clear()
        self._last_found.clear()

    def close(self) -> None:
        for spotter in self.spotters.values():
            spotter.close()
        self.spotters.clear()

    def process(self, msg: Message) -> list[Message]:
        if msg.topic != "face":
            return []
        h = msg.header
        seq = int(h["seq"])
        face_id = h.get("face_id")
        out: list[Message] = []
        if face_id is None:  # no face on this frame: every window starts again
            for fid, spotter in self.spotters.items():
                out += _tagged(fid, spotter.process(msg))
        else:
            spotter = self.spotters.get(face_id)
            if spotter is None and h.get("found"):
                spotter = self.spotters[face_id] = self.new_spotter()
                spotter.open()
            if h.get("found"):
                self._last_found[face_id] = seq
            if spotter is not None:
                out += _tagged(face_id, spotter.process(msg))
        out += self._forget(seq, starting_fps(h) * FORGET_S)
        return out

    def _forget(self, seq: int, frames: float) -> list[Message]:
        out: list[Message] = []
        for face_id in [f for f, last in self._last_found.items() if seq - last > frames]:
            del self._last_found[face_id]
            spotter = self.spotters.pop(face_id, None)
            if spotter is not None:
                out += _tagged(face_id, flush_stage(spotter))
                spotter.close()
        return out

    def flush(self) -> list[Message]:
        out: list[Message] = []
        for face_id in sorted(self.spotters):
            out += _tagged(face_id, flush_stage(self.spotters[face_id]))
        return out


def _tagged(face_id: int, messages: list[Message]) -> list[Message]:
    for m in messages:
        m.header["face_id"] = face_id
    return messages
