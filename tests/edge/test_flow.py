"""The CPU TV-L1 reference: conventions, accuracy on real images, strain and the recognition input form."""

import json

import cv2
import numpy as np
import pytest

from edge.perception import flow
from engines.errors import MestreamError


def _face_crop(assets, size=128):
    grey = cv2.imread(str(assets / "images" / "pyfeat_single_face.jpg"), cv2.IMREAD_GRAYSCALE)
    h, w = grey.shape
    s = min(h, w) * 2 // 3
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(grey[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)


def _shifted(image, dx, dy):
    """frame 2 such that pixel (x, y) of `image` moves to (x + dx, y + dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_flow_of_a_real_face_shifted_by_a_subpixel_amount_is_that_shift_right_and_down(assets):
    face = _face_crop(assets)
    f = flow.tvl1_flow(face, _shifted(face, 0.7, -0.4))
    assert f.shape == (128, 128, 2) and f.dtype == np.float32
    inner = f[16:-16, 16:-16].reshape(-1, 2)
    assert np.abs(np.median(inner, axis=0) - [0.7, -0.4]).max() < 0.05


def test_identical_frames_give_zero_flow(assets):
    face = _face_crop(assets)
    assert np.abs(flow.tvl1_flow(face, face)).max() < 1e-4


def test_middlebury_rubberwhale_epe_is_low_and_no_worse_than_opencv_dualtvl1(assets):
    from edge.tools.bench_flow import average_epe, opencv_tvl1, read_flo

    folder = assets / "flow" / "RubberWhale"
    a = cv2.imread(str(folder / "frame10.png"), cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(str(folder / "frame11.png"), cv2.IMREAD_GRAYSCALE)
    truth = read_flo(folder / "flow10.flo")
    # a 192x256 window keeps the test short; the full frames are in `mestream bench-flow`
    win = (slice(100, 292), slice(160, 416))
    params = flow.TVL1Params()
    ours = average_epe(flow.tvl1_flow(a[win], b[win], params), truth[win])
    theirs = average_epe(opencv_tvl1(params).calc(np.ascontiguousarray(a[win]), np.ascontiguousarray(b[win]), None),
                         truth[win])
    assert ours < 0.25, ours  # zero flow scores 1.26 on this sequence
    assert ours <= theirs * 1.05, (ours, theirs)


def test_strain_of_a_linear_flow_is_the_constant_tensor_norm():
    y, x = np.mgrid[0:20, 0:30].astype(np.float32)
    a, b, c, d = 0.02, -0.03, 0.05, 0.01  # u = a x + b y, v = c x + d y
    f = np.stack([a * x + b * y, c * x + d * y], axis=-1)
    expected = np.sqrt(a * a + d * d + 0.5 * (b + c) ** 2)
    assert np.allclose(flow.optical_strain(f), expected, atol=1e-6)


def test_recognition_input_has_the_composite_png_form(assets):
    face = _face_crop(assets)
    x = flow.flow_input(face, _shifted(face, 0.3, 0.5))
    assert x.shape == (3, 28, 28) and x.dtype == np.float32
    for channel in x:
        assert channel.min() == 0.0 and channel.max() == 1.0  # min-max per channel, as every composite PNG
        assert np.array_equal(np.rint(channel * 255) / np.float32(255), channel)  # uint8 levels


def test_composite_pngs_are_min_max_scaled_per_channel_as_flow_input_assumes(assets):
    folder = assets / "preprocessed" / "HTNet_MEGC2019_composite" / "STSNet_whole_norm_u_v_os"
    for path in sorted(folder.glob("*.png"))[:40]:
        rgb = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]
        assert rgb.shape == (28, 28, 3)
        assert (rgb.reshape(-1, 3).min(0) == 0).all() and (rgb.reshape(-1, 3).max(0) == 255).all()


def test_area_resize_equals_opencv_inter_area():
    rng = np.random.default_rng(1)
    c = rng.normal(size=(128, 128)).astype(np.float32)
    ref = cv2.resize(c, (28, 28), interpolation=cv2.INTER_AREA)
    assert np.abs(flow.resize_area(c, 28) - ref).max() < 1e-5


def test_median_filter_is_the_exact_window_median_with_replicated_borders():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(17, 23)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(f, 2, mode="edge"), (5, 5))
    assert np.array_equal(flow.median_filter(f, 5), np.median(windows.reshape(17, 23, 25), axis=-1))


def test_colour_frames_mismatched_sizes_and_bad_params_are_one_line_errors():
    grey = np.zeros((32, 32), np.uint8)
    with pytest.raises(MestreamError, match="grey"):
        flow.tvl1_flow(np.zeros((32, 32, 3), np.uint8), grey)
    with pytest.raises(MestreamError, match="differ in size"):
        flow.tvl1_flow(grey, np.zeros((32, 31), np.uint8))
    with pytest.raises(MestreamError, match="TVL1Params.median=4"):
        flow.TVL1Params(median=4)
    with pytest.raises(MestreamError, match="at least 28"):
        flow.flow_input(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8))


def test_params_dict_is_json_and_quotes_the_input_form():
    d = json.loads(json.dumps(flow.params_dict()))
    assert d["form"] == flow.FLOW_FORM and d["lambda_"] == flow.TVL1Params().lambda_


def test_pyramid_of_a_128_crop_stops_at_min_size():
    assert flow.pyramid_sizes(128, 128, flow.TVL1Params()) == [(128, 128), (64, 64), (32, 32), (16, 16)]


def test_epsilon_stops_early_on_the_cpu_and_lands_near_the_fixed_schedule(assets):
    face = _face_crop(assets)
    moved = _shifted(face, 0.7, -0.4)
    fixed = flow.tvl1_flow(face, moved)
    early = flow.tvl1_flow(face, moved, flow.TVL1Params(epsilon=0.01))
    assert np.abs(early - fixed)[16:-16, 16:-16].mean() < 0.02


def test_a_working_size_shrinks_the_crops_as_opencvs_area_resize_and_leaves_smaller_ones_alone():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (128, 128)).astype(np.float32)
    small = flow.shrink_to_work_size(crop, 64)
    assert small.shape == (64, 64) and np.abs(small - cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)).max() < 1e-3
    assert flow.shrink_to_work_size(crop, 0) is crop and flow.shrink_to_work_size(crop, 128) is crop
    assert flow.shrink_to_work_size(crop[:, :100], 96).shape == (96, 96)


def test_a_working_size_makes_the_same_input_form_from_a_quarter_of_the_pixels(assets):
    face = _face_crop(assets)
    moved = _shifted(face, 0.7, -0.4)
    full = flow.flow_input(face, moved)
    quarter = flow.flow_input(face, moved, flow.TVL1Params(work_size=64))
    assert quarter.shape == full.shape == (3, 28, 28)
    assert all(c.min() == 0.0 and c.max() == 1.0 for c in quarter)
    assert not np.array_equal(quarter, full) and np.abs(quarter - full).mean() < 0.2


def test_a_working_size_too_small_for_the_input_or_for_a_pyramid_is_refused():
    with pytest.raises(MestreamError, match="work_size=8"):
        flow.TVL1Params(work_size=8)
    face = np.zeros((64, 64), np.uint8)
    with pytest.raises(MestreamError, match="work_size=24 is under the input side 28"):
        flow.flow_input(face, face, flow.TVL1Params(work_size=24))


def test_the_live_schedule_stays_close_to_the_reference_schedule_on_a_real_face(assets):
    # the default (3 warps of 15 iterations) is what artifacts record and prep uses; REFERENCE_FLOW (5 of 30)
    # is the schedule the algorithm was validated with (benchmarks/flow_presets.py measures both on real pairs)
    assert (flow.TVL1Params().warps, flow.TVL1Params().iterations) == (3, 15)
    face = _face_crop(assets)
    moved = _shifted(face, 0.7, -0.4)
    live = flow.tvl1_flow(face, moved)
    reference = flow.tvl1_flow(face, moved, flow.REFERENCE_FLOW)
    assert np.abs(live - reference)[16:-16, 16:-16].mean() < 0.05
