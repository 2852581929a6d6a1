"""How the classify stage makes an artifact's flow input from the onset and apex crops: what its metadata declares.

An artifact's `flow` metadata names the TV-L1 parameters (`params`) and, optionally, `crop_window`: the aligned
crops are then re-cut to that window before the flow (edge/perception/composite_framing.py: the framing of the
MEGC2019 composite the model was trained on). Without it the crops are used as they come (flow_input, the form
`mestream prep` makes training inputs in). The CPU stage (classify.py) and the GPU stage (classify_gpu.py)
both take the choice from here, so the two paths feed a model the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.perception.composite_framing import check_window, composite_flow_input, reframe
from edge.perception.flow import TVL1Params, flow_input


@dataclass(frozen=True)
class FramedFlowInput:
    """flow_input of crops re-cut to `window` (the call signature of flow_input)."""

    window: tuple[float, float, float, float]

    def __call__(self, onset_crop: np.ndarray, apex_crop: np.ndarray, params: TVL1Params = TVL1Params(),
                 size: int = 28) -> np.ndarray:
        return composite_flow_input(onset_crop, apex_crop, params, size=size, window=self.window)


def crop_window(flow_meta: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The window the artifact's flow metadata asks the crops to be re-cut to, or None (crops as they come)."""
    window = flow_meta.get("crop_window")
    return None if window is None else check_window(window)


def flow_function(flow_meta: dict[str, Any]):
    """flow_input, or a FramedFlowInput when the metadata names a crop window."""
    window = crop_window(flow_meta)
    return flow_input if window is None else FramedFlowInput(window)


def crops_for_flow(flow_meta: dict[str, Any], onset: np.ndarray, apex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crops a flow kernel of its own (the GPU path) should be given: re-cut when the metadata says so."""
    window = crop_window(flow_meta)
    if window is None:
        return onset, apex
    return np.ascontiguousarray(reframe(onset, window)), np.ascontiguousarray(reframe(apex, window))
