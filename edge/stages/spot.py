"""spot: the spot stage's factory; edge/spotting holds the spotters and SpotParams.method picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.spotting import make_spotter
from edge.spotting.params import SpotParams
from edge.topology import stage_options_of

if TYPE_CHECKING:
    from edge.process import RunOptions


def build(options: dict[str, Any], run: RunOptions | None, resume_seq: int = 0):
    """The spot stage from its [stages.spot] table."""
    return make_spotter(stage_options_of("spot", options, SpotParams))
