"""Spotting: the spot stage's two methods and everything they share.

params.py (SpotParams: every knob, with its default, and the method), regional.py (the training-free regional
spotter: lagged motion against an adaptive threshold, events followed from a reference frame), signal.py
(regional motion between two aligned crops, head motion removed, blinks), intervals.py (threshold, onset, kind,
the "interval" message), learned.py (the SOFTNet spotter over an artifact, its features and peak picking),
continuity.py (when a window must restart), metrics.py (IoU >= 0.5 matching, pooled P/R/F1).

    spotter = make_spotter(SpotParams())        # the one factory: SpotParams.method picks the spotter
"""

from __future__ import annotations

from edge.spotting.params import SpotParams


def make_spotter(params: SpotParams | None = None, record_trace: bool = False):
    """The spot stage for params.method: "regional" (training-free) or "learned" (a softnet artifact)."""
    params = params or SpotParams()
    if params.method == "learned":
        from edge.spotting.learned import LearnedSpotter

        return LearnedSpotter(params, record_trace=record_trace)
    from edge.spotting.regional import RegionalSpotter

    return RegionalSpotter(params, record_trace=record_trace)
