"""The classify stage makes the flow input its artifact declares (edge/stages/classify_input.py)."""

import numpy as np

from edge.perception.composite_framing import COMPOSITE_WINDOW, reframe
from edge.perception.flow import flow_input
from edge.stages.classify_input import FramedFlowInput, crops_for_flow, flow_function


def test_an_artifact_without_a_crop_window_gets_flow_input_of_the_crops_as_they_come():
    assert flow_function({"params": {}}) is flow_input
    onset, apex = np.zeros((32, 32), np.uint8), np.ones((32, 32), np.uint8)
    assert crops_for_flow({}, onset, apex) == (onset, apex)


def test_an_artifact_with_a_crop_window_gets_the_re_cut_crops():
    meta = {"crop_window": list(COMPOSITE_WINDOW)}
    assert flow_function(meta) == FramedFlowInput(COMPOSITE_WINDOW)
    rng = np.random.default_rng(0)
    onset, apex = (rng.integers(0, 255, (64, 64)).astype(np.uint8) for _ in range(2))
    got = crops_for_flow(meta, onset, apex)
    assert np.array_equal(got[0], reframe(onset)) and np.array_equal(got[1], reframe(apex))
