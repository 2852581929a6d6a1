"""The spotter on aligned crops made here: a smooth random texture stands in for a face, so these tests
need neither MediaPipe nor the real assets; real faces go through tests/edge/test_spot_eval.py."""

import cv2
import numpy as np
import pytest

from edge.messages import Message
from edge.perception.align import region_boxes
from edge.spotting.intervals import kind_of
from edge.spotting.metrics import Interval, intervals_of, iou
from edge.spotting.params import SpotParams
from edge.spotting.regional import RegionalSpotter
from engines.errors import MestreamError

S = 128


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(0, 1, (S, S)).astype(np.float32), (0, 0), 2.0)
    return (base - base.min()) / (base.max() - base.min()) * 180 + 40


def _warp(image: np.ndarray, centre: tuple[float, float], shift: tuple[float, float], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    g = np.exp(-0.5 * (((xx - centre[0]) / sigma) ** 2 + ((yy - centre[1]) / sigma) ** 2))
    return cv2.remap(image, xx - g * shift[0], yy - g * shift[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _profile(i: int, onset: int, apex: int, hold_end: int, offset: int) -> float:
    if i <= onset or i >= offset:
        return 0.0
    if i < apex:
        return 0.5 - 0.5 * np.cos(np.pi * (i - onset) / (apex - onset))
    if i <= hold_end:
        return 1.0
    return 0.5 + 0.5 * np.cos(np.pi * (i - hold_end) / (offset - hold_end))


def _mouth_corner() -> tuple[float, float]:
    x, y, w, h = region_boxes(S)["mouth_left"]
    return x + w / 2, y + h / 2


def make_faces(n, fps=30.0, events=(), head=(), seed=1, start_seq=0):
    """Face messages over n frames; events: (onset, apex, hold_end, offset, amplitude px) at a mouth corner;
    head: (onset, apex, hold_end, offset, shift px) moving the whole crop."""
    rng = np.random.default_rng(seed)
    face = _texture(seed)
    out = []
    for i in range(n):
        img = face
        for onset, apex, hold_end, offset, amp in events:
            w = _profile(i, onset, apex, hold_end, offset)
            if w:
                img = _warp(img, _mouth_corner(), (-0.8 * amp * w, -0.6 * amp * w), 7.0)
        for onset, apex, hold_end, offset, amp in head:
            w = _profile(i, onset, apex, hold_end, offset)
            if w:
                m = np.float32([[1, 0, amp * w], [0, 1, 0.5 * amp * w]])
                img = cv2.warpAffine(img, m, (S, S), borderMode=cv2.BORDER_REPLICATE)
        noisy = np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8)  # sensor noise
        seq = start_seq + i
        header = {"seq": seq, "t_capture_ns": int(seq * 1e9 / fps), "fps": fps, "found": True, "box": [10, 20, 200, 200]}
        out.append(Message("face", header, {"crop": noisy}))
    return out


def spot(messages, params=None):
    stage = RegionalSpotter(params)
    stage.open()
    out = []
    for m in messages:
        out += stage.process(m)
    out += stage.flush()
    stage.close()
    return out


def intervals(out):
    return [
        Interval(m.header["onset"]["seq"], m.header["offset"]["seq"], m.header["kind"], m.header["apex"]["seq"])
        for m in out
        if m.topic == "interval"
    ]


def test_a_still_face_with_sensor_noise_gives_no_event():
    assert intervals(spot(make_faces(150))) == []


def test_a_micro_expression_is_found_with_its_onset_apex_and_offset():
    truth = Interval(45, 54, "micro", 49)  # 0.3 s at 30 fps, 2.5 px at the mouth corner of a 128 px crop
    out = spot(make_faces(100, events=[(45, 49, 49, 54, 2.5)]))
    found = intervals(out)
    assert len(found) == 1
    assert found[0].kind == "micro"
    assert iou(found[0], truth) >= 0.5
    assert 46 <= found[0].apex <= 52
    msg = [m for m in out if m.topic == "interval"][0]
    assert msg.arrays["onset"].shape == (S, S) and msg.arrays["apex"].shape == (S, S)
    assert msg.header["fps"] == 30.0 and msg.header["box"] == [10, 20, 200, 200]
    assert msg.header["score"] > 1.0


def test_the_same_micro_expression_is_found_at_200_fps():
    fps = 200.0
    # 0.3 s: onset at 1 s, apex 0.12 s later
    truth = Interval(200, 260, "micro", 224)
    found = intervals(spot(make_faces(330, fps=fps, events=[(200, 224, 224, 260, 2.5)])))
    assert len(found) == 1 and found[0].kind == "micro"
    assert iou(found[0], truth) >= 0.5


def test_an_expression_held_for_a_second_is_a_macro_expression():
    # held further than hold_px away (a smile), not the fraction of a pixel a real micro-expression leaves behind
    truth = Interval(40, 90, "macro")
    found = intervals(spot(make_faces(130, events=[(40, 50, 80, 90, 5.0)]), SpotParams(hold_px=0.2)))
    assert [f.kind for f in found] == ["macro"]
    assert iou(found[0], truth) >= 0.5


def test_an_expression_that_stops_moving_slightly_away_from_rest_ends_when_the_motion_stops():
    # a real micro-expression seldom returns exactly to the face before its onset: it rises in 0.13 s and
    # the face then stays where it is, a fraction of a pixel away; the event ends where the motion stopped
    found = intervals(spot(make_faces(130, events=[(40, 44, 129, 130, 2.5)])))
    assert [f.kind for f in found] == ["micro"]
    assert iou(found[0], Interval(40, 46, "micro", 44)) >= 0.5


def test_an_expression_held_under_the_hold_bar_and_then_released_ends_as_one_macro_expression():
    # rises in 0.3 s, held 0.8 s at less than hold_px, released in 0.3 s: the rise is published as micro when
    # the face stops moving (live, it cannot know yet); the release brings the face back to where it was before
    # the rise, and closes the whole as one macro-expression instead of a second micro one
    faces = make_faces(150, events=[(30, 39, 63, 72, 2.5)])
    out = spot(faces)
    found = intervals(out)
    assert [f.kind for f in found] == ["micro", "macro"]
    assert iou(found[1], Interval(30, 72, "macro")) >= 0.5
    assert found[1].onset == found[0].onset and found[1].apex == found[0].apex
    macro = [m for m in out if m.topic == "interval"][1]
    assert macro.header["revises"] == {"onset": found[0].onset, "offset": found[0].offset}
    assert intervals_of(out) == [found[1]]  # a record keeps the macro-expression alone
    assert intervals_of(out, revised=False) == found
    without = intervals(spot(faces, SpotParams(release_s=0.0)))
    assert [f.kind for f in without] == ["micro", "micro"]


def test_a_micro_expression_that_pauses_at_its_apex_and_comes_back_slowly_is_revised_to_end_where_it_came_back():
    # rises in 0.17 s, pauses 0.1 s at its apex, comes back in 0.2 s too slowly to fire an event of its own: the
    # event closes when the face stops at the apex, then a revision moves its offset to where the face is back
    truth = Interval(40, 54, "micro", 45)
    out = spot(make_faces(130, events=[(40, 45, 48, 54, 1.2)]))
    first, revised = intervals(out)
    assert iou(first, truth) < 0.5 and iou(revised, truth) >= 0.5
    assert revised.kind == "micro" and (revised.onset, revised.apex) == (first.onset, first.apex)
    assert [m for m in out if m.topic == "interval"][1].header["revises"] == {"onset": first.onset, "offset": first.offset}
    assert intervals_of(out) == [revised]


def test_a_release_long_after_the_rise_is_a_new_event_not_the_end_of_a_macro_expression():
    faces = make_faces(200, events=[(30, 39, 120, 129, 2.5)])  # held 2.7 s, more than release_s
    assert [f.kind for f in intervals(spot(faces))] == ["micro", "micro"]


def test_an_event_is_micro_when_it_is_short_or_when_it_rises_fast():
    assert kind_of(0.4, 0.3, 0.5, 0.25) == "micro"
    assert kind_of(0.6, 0.2, 0.5, 0.25) == "micro"  # CASME II and SAMM: onset to apex within 0.25 s
    assert kind_of(0.6, 0.3, 0.5, 0.25) == "macro"
    assert kind_of(0.6, 0.2, 0.5, 0.0) == "macro"


def test_a_head_shift_of_two_pixels_is_not_an_expression():
    assert intervals(spot(make_faces(120, head=[(40, 46, 46, 52, 2.0)]))) == []


def test_an_expression_under_a_head_motion_much_larger_than_it_is_dropped_only_with_head_ratio():
    # a 3 px mouth-corner motion while the whole crop moves 2 px and back: the head moves the flow grid
    # several times more than the residual shows
    faces = make_faces(120, events=[(40, 44, 44, 49, 3.0)], head=[(38, 44, 44, 50, 2.0)])
    assert [f.kind for f in intervals(spot(faces, SpotParams(head_ratio=0.0)))] == ["micro"]
    assert intervals(spot(faces, SpotParams(head_ratio=2.0))) == []
    alone = make_faces(120, events=[(40, 44, 44, 49, 1.5)])
    assert [f.kind for f in intervals(spot(alone, SpotParams(head_ratio=2.0)))] == ["micro"]


def test_a_gap_in_the_frame_sequence_restarts_the_window():
    faces = make_faces(60)
    faces[30].header["gap"] = 4
    out = spot(faces)
    assert [m.header["event"] for m in out if m.topic == "status"] == ["restart"]
    # a jump in seq without a gap field restarts too
    faces = make_faces(30) + make_faces(30, start_seq=40)
    assert [m.header["event"] for m in spot(faces) if m.topic == "status"] == ["restart"]


def test_a_lost_face_resets_the_window_so_nothing_straddles_it():
    faces = make_faces(100, events=[(45, 49, 49, 54, 2.5)])
    for i in range(44, 48):  # the face is lost while the expression starts
        faces[i] = Message("face", {"seq": i, "t_capture_ns": 0, "fps": 30.0, "found": False})
    found = intervals(spot(faces))
    assert all(f.onset >= 48 for f in found)


def test_bad_parameters_are_refused_with_the_value():
    with pytest.raises(MestreamError, match="return_frac=1.5"):
        SpotParams(return_frac=1.5)
    with pytest.raises(MestreamError, match="flow_size=8"):
        SpotParams(flow_size=8)
    with pytest.raises(MestreamError, match="candidate_frac=1.2"):
        SpotParams(candidate_frac=1.2)
    with pytest.raises(MestreamError, match="hold_frac=1.0"):
        SpotParams(hold_frac=1.0)
    with pytest.raises(MestreamError, match="band_side=0.5"):
        SpotParams(band_side=0.5)


def test_motion_in_the_crops_outer_band_is_left_out_of_the_region_scores_and_motion_inside_is_not():
    from edge.spotting.signal import REGION_NAMES, RegionMotion

    face = _texture(3)
    x, y, w, h = region_boxes(S)["brow_right"]
    edge = (S - 5.0, y + h / 2)  # the brow box's outer end, in the crop's side band
    inside = _mouth_corner()
    banded = RegionMotion(48, 7, band=(0.125, 0.02, 0.04))
    plain = RegionMotion(48, 7)
    rest = np.clip(face, 0, 255).astype(np.uint8)

    def scores(meter, centre):
        moved = np.clip(_warp(face, centre, (0.0, 4.0), 5.0), 0, 255).astype(np.uint8)
        return dict(zip(REGION_NAMES, meter.scores(meter.prepare(rest), meter.prepare(moved))))

    assert scores(plain, edge)["brow_right"] > 0.12
    assert scores(banded, edge)["brow_right"] < 0.04
    assert scores(banded, inside)["mouth_left"] == pytest.approx(scores(plain, inside)["mouth_left"], rel=0.05)


def test_an_onset_placed_at_a_higher_rest_level_still_finds_the_micro_expression():
    truth = Interval(45, 54, "micro", 49)
    faces = make_faces(100, events=[(45, 49, 49, 54, 2.5)])
    for params in (SpotParams(onset_rest_z=3.0),):
        found = intervals(spot(faces, params))
        assert len(found) == 1 and iou(found[0], truth) >= 0.5, params


def _flows_while_spotting(faces, params):
    """(messages out, dense flows computed, frames analysed while an event was followed after its trigger)."""
    stage = RegionalSpotter(params)
    stage.open()
    calls, following = [], []
    real = stage._meter.residual
    stage._meter.residual = lambda a, b: calls.append(1) or real(a, b)
    real_follow = stage._follow_event
    stage._follow_event = lambda *a: following.append(1) or real_follow(*a)
    out = []
    for m in faces:
        out += stage.process(m)
    stage.close()
    return out, len(calls), len(following) - len(intervals(out))


def test_the_stage_computes_one_dense_flow_per_frame_a_second_during_events_and_the_lookback_once_per_event():
    faces = make_faces(100, events=[(45, 49, 49, 54, 2.5)])
    k = SpotParams().frames(SpotParams().lag_s, 30.0)
    out, flows, in_event = _flows_while_spotting(faces, SpotParams(lookback_s=0.0))
    assert len(intervals(out)) == 1  # the event was followed, with no burst of flows when it started
    assert 0 < in_event < 15
    assert flows == len(faces) - k + in_event
    out, flows, in_event = _flows_while_spotting(faces, SpotParams())
    assert len(intervals(out)) == 1
    assert flows == len(faces) - k + in_event + SpotParams().frames(SpotParams().lookback_s, 30.0)


def test_a_200_fps_stream_analysed_at_50_frames_a_second_finds_the_micro_expression_with_a_quarter_of_the_flows():
    fps, params = 200.0, SpotParams(max_rate_hz=50.0)
    faces = make_faces(330, fps=fps, events=[(200, 224, 224, 260, 2.5)])
    out, flows, in_event = _flows_while_spotting(faces, params)
    found = intervals(out)
    assert len(found) == 1 and found[0].kind == "micro"
    assert iou(found[0], Interval(200, 260, "micro", 224)) >= 0.5
    # onset, apex and offset are source frames, on analysed ones, and the interval states the source's rate
    assert all(seq % 4 == 0 for seq in (found[0].onset, found[0].apex, found[0].offset))
    assert [m.header["fps"] for m in out if m.topic == "interval"] == [fps]
    analysed, rate = len(range(0, len(faces), 4)), fps / 4
    assert flows == analysed - params.frames(params.lag_s, rate) + in_event + params.frames(params.lookback_s, rate)


def test_the_analysis_stride_is_the_fewest_frames_that_keep_under_the_rate_cap():
    assert SpotParams(max_rate_hz=50.0).stride(200.0) == 4
    assert SpotParams(max_rate_hz=60.0).stride(200.0) == 4  # 66.7 analysed a second would be over the cap
    assert SpotParams(max_rate_hz=60.0).stride(60.0) == 1
    assert SpotParams(max_rate_hz=0.0).stride(200.0) == 1  # 0: every frame
    with pytest.raises(MestreamError, match="max_rate_hz=-1"):
        SpotParams(max_rate_hz=-1.0)
    stage = RegionalSpotter()  # the default cap, 60 a second
    stage.open()
    stage.process(make_faces(1, fps=200.0)[0])
    assert stage.stride == 4


def test_a_region_that_is_always_noisy_is_weighed_down_to_the_others():
    # the brow box flickers (smooth texture noise, new every frame) all along: its lagged scores are high,
    # but scaled by its own noise level it neither fires nor hides the mouth's micro-expression (without
    # the weights this video gives a false micro-expression in the brow)
    box = region_boxes(S)["brow_left"]
    rng = np.random.default_rng(5)
    faces = make_faces(160, events=[(110, 114, 114, 119, 2.5)])
    for m in faces:
        crop = m.arrays["crop"].astype(np.float32)
        x, y, w, h = box
        patch = cv2.GaussianBlur(rng.normal(0, 30, (h, w)).astype(np.float32), (0, 0), 3.0)
        crop[y : y + h, x : x + w] += patch
        m.arrays["crop"] = np.clip(crop, 0, 255).astype(np.uint8)
    found = intervals(spot(faces))
    assert [f.kind for f in found] == ["micro"]
    assert iou(found[0], Interval(110, 119, "micro", 114)) >= 0.5


def test_a_lid_moving_down_more_than_its_brow_is_a_blink_and_one_moving_up_is_not():
    from edge.spotting.signal import REGION_NAMES, is_lid_sweep

    scores = np.full(len(REGION_NAMES), 0.05, np.float32)
    scores[REGION_NAMES.index("eye_left")] = 0.55  # under blink_px: size alone does not decide
    assert not is_lid_sweep(scores, 0.7)
    assert is_lid_sweep(scores, 0.7, np.array([0.52, 0.0]), 0.5)  # the upper lid closing
    assert not is_lid_sweep(scores, 0.7, np.array([-0.52, 0.0]), 0.5)  # a lid tightener raising the lower lid
    scores[REGION_NAMES.index("brow_left")] = 0.8  # a brow lowerer drags the eye down less than the brow
    assert not is_lid_sweep(scores, 0.7, np.array([0.52, 0.0]), 0.5)


def _with_lid_sweep(faces, onset, apex, hold_end, offset, amp):
    """The image-left eye box swept down (an upper lid closing), on top of whatever the faces show."""
    x, y, w, h = region_boxes(S)["eye_left"]
    for i, m in enumerate(faces):
        wgt = _profile(i, onset, apex, hold_end, offset)
        if wgt:
            m.arrays["crop"] = _warp(m.arrays["crop"].astype(np.float32), (x + w / 2, y + h / 2), (0.0, amp * wgt), 6.0)
            m.arrays["crop"] = np.clip(m.arrays["crop"], 0, 255).astype(np.uint8)
    return faces


def test_an_event_fired_by_a_lid_sweep_alone_is_dropped_as_a_blink():
    # the eye region fires the trigger while the sweep is still too small to be called a blink; it is
    # masked as a blink a frame later, and the little the other regions show is the blink's leak
    faces = _with_lid_sweep(make_faces(110), 60, 64, 66, 69, 10.0)
    assert intervals(spot(faces)) == []


def test_a_micro_expression_with_a_blink_inside_is_kept_when_the_other_regions_move_well_over_the_threshold():
    # the lid starts to close two frames before the mouth moves (as in many real CASME II clips): the mouth
    # moves far more than a blink's leak (blink_keep x T), so the expression is reported
    faces = _with_lid_sweep(make_faces(110, events=[(62, 66, 66, 71, 2.5)]), 60, 64, 66, 69, 10.0)
    found = intervals(spot(faces))
    assert len(found) == 1 and iou(found[0], Interval(62, 71, "micro", 66)) >= 0.5
    assert intervals(spot(faces, SpotParams(blink_keep=100.0))) == []  # with an impossible bar: dropped
    # a lid sweep's leak reaches the nose, not the mouth: the mouth's motion is what keeps it
    assert intervals(spot(faces, SpotParams(blink_keep=0.0, blink_lower=100.0))) == []


def test_a_micro_expression_that_starts_before_a_blink_is_still_found():
    faces = _with_lid_sweep(make_faces(110, events=[(58, 62, 62, 67, 2.5)]), 61, 65, 67, 70, 10.0)
    found = intervals(spot(faces))
    assert [f.kind for f in found] == ["micro"]
    assert iou(found[0], Interval(58, 67, "micro", 62)) >= 0.5


def test_the_apex_is_in_the_rise_not_at_the_late_peak_of_a_drift_after_it():
    # a 2.5 px rise over 120 ms, then a slow 0.8 px drift the same way: the displacement peaks late
    faces = make_faces(380, fps=200.0, events=[(200, 224, 262, 300, 2.5), (224, 280, 280, 300, 0.8)])
    late = intervals(spot(faces, SpotParams(apex_frac=1.0)))
    early = intervals(spot(faces))  # the default: the first frame at half the peak
    assert len(late) == len(early) == 1
    assert late[0].apex >= 260 and 204 <= early[0].apex <= 230
    assert (early[0].onset, early[0].offset, early[0].kind) == (late[0].onset, late[0].offset, late[0].kind)


def test_a_lower_onset_frac_moves_the_onset_earlier_in_the_rise_and_nothing_else():
    faces = make_faces(330, fps=200.0, events=[(200, 224, 224, 260, 2.5)])
    default = intervals(spot(faces))
    low = intervals(spot(faces, SpotParams(onset_frac=0.05)))
    assert len(default) == len(low) == 1
    assert low[0].onset < default[0].onset and low[0].onset >= 195
    assert (low[0].apex, low[0].offset) == (default[0].apex, default[0].offset)


def test_the_apex_and_onset_fractions_are_checked():
    with pytest.raises(MestreamError, match="apex_frac=0"):
        SpotParams(apex_frac=0.0)
    with pytest.raises(MestreamError, match="onset_frac=1.0"):
        SpotParams(onset_frac=1.0)


def test_the_onset_crop_comes_from_nearer_the_start_of_the_rise_than_the_intervals_onset():
    out = spot(make_faces(330, fps=200.0, events=[(200, 224, 224, 260, 2.5)]))
    msg = [m for m in out if m.topic == "interval"][0]
    assert 195 <= msg.header["flow_onset"]["seq"] < msg.header["onset"]["seq"]
    same = [m for m in spot(make_faces(330, fps=200.0, events=[(200, 224, 224, 260, 2.5)]),
                            SpotParams(flow_onset_frac=0.3)) if m.topic == "interval"][0]
    assert same.header["flow_onset"] == same.header["onset"]
    with pytest.raises(MestreamError, match="flow_onset_frac=1.0"):
        SpotParams(flow_onset_frac=1.0)
    for field in ("flow_onset_frac", "onset_frac"):  # a fraction of the peak: never negative
        with pytest.raises(MestreamError, match=f"{field}=-0.1"):
            SpotParams(**{field: -0.1})
