"""The aligned crops re-cut to the MEGC2019 composite's framing before the flow (edge/perception/composite_framing.py)."""

import cv2
import numpy as np
import pytest

from edge.perception.composite_framing import COMPOSITE_WINDOW, check_window, composite_flow_input, reframe
from edge.perception.flow import TVL1Params, flow_input
from engines.errors import MestreamError


def _texture(side=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((side, side)) * 255).astype(np.uint8), (0, 0), 2)


def test_the_whole_window_gives_the_crop_back():
    crop = _texture()
    assert np.array_equal(reframe(crop, (0.0, 0.0, 1.0, 1.0)), crop)


def test_a_window_is_cut_out_and_stretched_back_to_the_crops_size():
    x = np.tile(np.arange(128, dtype=np.float32), (128, 1))  # each pixel holds its own column
    out = reframe(x, (0.25, 0.0, 0.75, 1.0))
    assert out.shape == x.shape
    assert out[5, 0] == pytest.approx(32.0) and out[5, 64] == pytest.approx(64.0)  # x0 w + x (x1 - x0)
    assert np.all(np.diff(out[5]) >= 0) and out[5, -1] <= 96.0


def test_the_composite_window_trims_a_few_percent_and_more_at_the_chin():
    x0, y0, x1, y1 = COMPOSITE_WINDOW
    assert 0 < x0 < 0.05 and 0.95 < x1 < 1 and 0 < y0 < 0.05 and 0.9 < y1 < 0.95


def test_the_framed_input_is_flow_input_of_the_re_cut_crops():
    onset = _texture(64)
    apex = np.roll(onset, 2, axis=1)
    params = TVL1Params(warps=1, iterations=5, nscales=2)
    framed = composite_flow_input(onset, apex, params)
    assert framed.shape == (3, 28, 28) and framed.dtype == np.float32
    assert np.array_equal(framed, flow_input(reframe(onset), reframe(apex), params))
    assert not np.array_equal(framed, flow_input(onset, apex, params))


@pytest.mark.parametrize("window, message", [
    ("wide", "is not four numbers"),
    ([0.1, 0.1, 0.9], "is not four numbers"),
    ([0.6, 0.0, 0.4, 1.0], "is not a window of the crop"),
    ([0.0, 0.0, 0.1, 0.1], "is not a window of the crop"),
])
def test_a_bad_window_is_refused_in_one_line(window, message):
    with pytest.raises(MestreamError, match=message) as info:
        check_window(window)
    assert "\n" not in str(info.value)
