"""The track stage on real videos: one face message per frame, lost/found events, a steady crop."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.messages import Message
from edge.perception.align import warp_crop
from edge.stages.face_tracking import FaceTracking, TrackParams
from edge.tools.track_bench import bench_face_tracking, read_frames
from engines.errors import MestreamError


def _track(frames, params=None):
    stage = FaceTracking(params or TrackParams())
    stage.open()
    faces, events = [], []
    try:
        for i, frame in enumerate(frames):
            for msg in stage.process(Message("frame", {"seq": i, "t_capture_ns": 1000 * i, "fps": 30.0}, {"image": frame})):
                if msg.topic == "status":
                    events.append((msg.header["seq"], msg.header["event"]))
                else:
                    faces.append(msg)
    finally:
        stage.close()
    return faces, events


def test_a_single_face_video_gives_an_aligned_crop_for_every_frame(assets):
    frames = read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=30)
    faces, events = _track(frames)
    assert events == [(0, "face_found")]
    assert [f.header["seq"] for f in faces] == list(range(30))
    for face in faces:
        assert face.topic == "face" and face.header["found"] is True
        assert face.arrays["crop"].shape == (128, 128) and face.arrays["crop"].dtype == np.uint8
        assert face.arrays["crop_color"].shape == (128, 128, 3)
        marks = face.arrays["landmarks"]
        assert marks.shape == (478, 2) and marks.dtype == np.float32
        # the face fills the crop: eye corners, nose tip and chin (199) inside, the chin's tip (152) at the
        # bottom edge as in the MEGC2019 composite's crops
        assert ((marks[[33, 263, 1, 199]] >= 0) & (marks[[33, 263, 1, 199]] < 128)).all()
        assert abs(marks[152, 1] - 128) < 8
        x, y, w, h = face.header["box"]
        assert 0 <= x < 640 and 0 <= y < 360 and w > 50 and h > 50
        assert np.array(face.header["transform"]).shape == (2, 3)
        assert face.header["t_capture_ns"] == 1000 * face.header["seq"]


def test_the_face_is_lost_where_the_cartoon_starts(assets):
    frames = read_frames(assets / "videos" / "pyfeat_face_noface.mov")
    faces, events = _track(frames)
    assert events[0] == (0, "face_found")
    # no phantom face in the cartoon (its faces score 0.62-0.68 on the full-range detector)
    assert [e for _, e in events] == ["face_found", "face_lost"]
    assert abs(events[1][0] - 72) <= 2  # the manifest: face in frames 0-71
    assert len(faces) == len(frames)
    assert all(not f.header["found"] and "crop" not in f.arrays for f in faces[events[1][0] :])


def test_the_face_is_found_where_it_appears(assets):
    faces, events = _track(read_frames(assets / "videos" / "pyfeat_noface_face.mov", limit=110))
    assert events[0] == (0, "face_lost")
    assert [e for _, e in events] == ["face_lost", "face_found"]
    assert abs(events[1][0] - 96) <= 2  # the manifest: face from frame 96
    assert sum(f.header["found"] for f in faces) == 110 - events[1][0]


def test_a_video_without_faces_runs_to_the_end_with_one_lost_event(assets):
    frames = read_frames(assets / "videos" / "pyfeat_no_face.mp4")
    faces, events = _track(frames)
    assert events == [(0, "face_lost")]
    assert len(faces) == len(frames) and not any(f.header["found"] for f in faces)


def test_the_steady_hold_brings_crop_jitter_on_a_still_face_down_to_the_sensor_noise(assets):
    frames = read_frames(assets / "videos" / "evm_face.mp4", limit=60)
    held = bench_face_tracking(frames, TrackParams(detect_every=1))
    free = bench_face_tracking(frames, TrackParams(move_px=0.0, move_deg=0.0, settle_frames=1, detect_every=1))
    # the noise floor: one fixed transform for all frames, so only the sensor (and the real, tiny head
    # motion of this clip) changes the crop; measured from frame 5 on like the benchmark's jitter
    fixed = held.transforms[-1]
    crops = [cv2.cvtColor(warp_crop(f, fixed, 128), cv2.COLOR_BGR2GRAY).astype(np.int16) for f in frames[5:]]
    floor = float(np.mean([np.abs(a - b).mean() for a, b in zip(crops[:-1], crops[1:])]))
    assert held.found == free.found == 60
    assert held.jitter < 0.5 * free.jitter
    assert held.jitter < 1.1 * floor


def test_skipping_facemesh_still_sends_one_face_message_per_frame(assets):
    frames = read_frames(assets / "videos" / "evm_face.mp4", limit=24)
    faces, _ = _track(frames, TrackParams(detect_every=4, motion_gate=0.0))
    assert len(faces) == 24 and all(f.header["found"] for f in faces)
    fresh = [f.header["fresh"] for f in faces]
    # FaceMesh runs on every frame until the hold settles (3 frames), then on every 4th one
    assert fresh[:3] == [True, True, True]
    assert fresh[3:] == [False, False, False, True] * 5 + [False]
    assert all(f.header["held"] for f in faces[3:])


def test_skipped_frames_reuse_the_last_landmarks_with_the_held_transform(assets):
    frames = read_frames(assets / "videos" / "evm_face.mp4", limit=8)
    faces, _ = _track(frames, TrackParams(detect_every=4, motion_gate=0.0))
    last_fresh = None
    for f in faces:
        if f.header["fresh"]:
            last_fresh = f
            continue
        assert f.header["held"] and f.header["transform"] == last_fresh.header["transform"]
        np.testing.assert_array_equal(f.arrays["landmarks"], last_fresh.arrays["landmarks"])
        assert not np.array_equal(f.arrays["crop"], last_fresh.arrays["crop"])  # a new frame, warped


def test_the_motion_gate_reruns_facemesh_when_the_face_changes(assets):
    still = read_frames(assets / "videos" / "evm_face.mp4", limit=16)
    moving = read_frames(assets / "videos" / "pyfeat_WolfgangLanger_Pexels.mp4", limit=16)
    params = TrackParams(detect_every=8, motion_gate=3.0)
    quiet = bench_face_tracking(still, params)
    busy = bench_face_tracking(still[:8] + moving[:8], params)  # a cut to another face half-way
    assert quiet.landmark_runs <= 3 + 2  # 3 to settle, then every 8th frame
    assert busy.landmark_runs >= quiet.landmark_runs + 3  # the cut forces a run and a new settle


def test_a_gap_in_the_sequence_forces_a_fresh_facemesh_run(assets):
    frames = read_frames(assets / "videos" / "evm_face.mp4", limit=6)
    stage = FaceTracking(TrackParams(detect_every=10))
    stage.open()
    try:
        fresh = []
        for i, frame in enumerate(frames[:5]):
            fresh.append(stage.process(Message("frame", {"seq": i, "t_capture_ns": i}, {"image": frame}))[-1].header["fresh"])
        after_gap = stage.process(Message("frame", {"seq": 9, "t_capture_ns": 9, "gap": 3}, {"image": frames[5]}))[-1]
    finally:
        stage.close()
    assert fresh == [True, True, True, False, False]
    assert after_gap.header["fresh"] and after_gap.header["gap"] == 3


def test_grey_frames_give_a_crop_without_a_colour_one(assets):
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=3)]
    faces, events = _track(frames)
    assert events == [(0, "face_found")]
    assert all(f.header["found"] and "crop_color" not in f.arrays for f in faces)


def test_bad_skip_settings_are_refused_with_the_fix():
    with pytest.raises(MestreamError, match="detect_every=0"):
        TrackParams(detect_every=0)
    with pytest.raises(MestreamError, match="motion_gate=-1"):
        TrackParams(motion_gate=-1.0)


def test_a_frame_without_an_image_is_refused():
    stage = FaceTracking()
    stage.open()
    try:
        with pytest.raises(MestreamError, match="has no 'image' array"):
            stage.process(Message("frame", {"seq": 7}))
    finally:
        stage.close()


def _side_by_side(left: list[np.ndarray], right: list[np.ndarray], height: int = 360) -> list[np.ndarray]:
    def fit(frame):
        return cv2.resize(frame, (round(frame.shape[1] * height / frame.shape[0]), height), interpolation=cv2.INTER_AREA)

    return [np.hstack([fit(a), fit(b)]) for a, b in zip(left, right)]


def test_two_faces_side_by_side_keep_their_ids_and_their_own_crops(assets):
    left = read_frames(assets / "videos" / "evm_face.mp4", limit=20)
    right = read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=20)
    frames = _side_by_side(left, right)
    split = round(left[0].shape[1] * 360 / left[0].shape[0])  # where the right video starts
    faces, events = _track(frames, TrackParams(max_faces=2))
    assert events == [(0, "face_found"), (0, "face_found")]
    assert [f.header["seq"] for f in faces] == [i // 2 for i in range(40)]  # two face messages per frame, in id order
    for face in faces:
        assert face.header["found"] is True and face.arrays["crop"].shape == (128, 128)
        x, _, w, _ = face.header["box"]
        assert (x + w / 2 < split) == (face.header["face_id"] == 0)  # ids numbered left to right, never swapped
    assert [f.header["face_id"] for f in faces] == [0, 1] * 20
    # each face its own crop: the two faces' crops differ, each stays nearly the same from frame to frame
    first = {f.header["face_id"]: f.arrays["crop"].astype(np.float32) for f in faces[:2]}
    last = {f.header["face_id"]: f.arrays["crop"].astype(np.float32) for f in faces[-2:]}
    assert np.abs(first[0] - last[0]).mean() < 12 and np.abs(first[1] - last[1]).mean() < 12
    assert np.abs(first[0] - first[1]).mean() > 20


def test_one_face_at_most_by_default_with_face_id_zero(assets):
    left = read_frames(assets / "videos" / "evm_face.mp4", limit=5)
    right = read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=5)
    faces, events = _track(_side_by_side(left, right))
    assert len(faces) == 5 and {f.header["face_id"] for f in faces} == {0}
    assert events == [(0, "face_found")]


def test_a_face_that_leaves_is_lost_by_name_and_comes_back_under_a_new_id(assets):
    frames = read_frames(assets / "videos" / "evm_face.mp4", limit=4)
    blank = np.zeros_like(frames[0])
    stage = FaceTracking(TrackParams(forget_after=2))
    stage.open()
    out = []
    try:
        for i, frame in enumerate([*frames[:2], blank, blank, blank, blank, *frames[2:]]):
            out.append(stage.process(Message("frame", {"seq": i, "t_capture_ns": i, "fps": 30.0}, {"image": frame})))
    finally:
        stage.close()
    statuses = [(i, m.header["event"], m.header.get("face_id")) for i, msgs in enumerate(out) for m in msgs if m.topic == "status"]
    assert statuses == [(0, "face_found", 0), (2, "face_lost", 0), (6, "face_found", 1)]
    lost = next(m for m in out[2] if m.topic == "status")
    assert "face 0" in lost.header["detail"] and len(lost.header["box"]) == 4
    # while its id is open the missing face is sent found=False under its id; then one message without any
    assert [(m.header.get("face_id"), m.header["found"]) for msgs in out[2:6] for m in msgs if m.topic == "face"] == \
        [(0, False), (0, False), (None, False), (None, False)]


@pytest.mark.parametrize("value", [0, -2])
def test_max_faces_below_one_is_refused_in_one_line_with_the_fix(value):
    from edge.topology import stage_options_of

    with pytest.raises(MestreamError, match=rf"max_faces={value}; expected an integer >= 1") as caught:
        stage_options_of("track", {"max_faces": value}, TrackParams)
    assert "\n" not in str(caught.value) and "max_faces = 2" in str(caught.value)


def test_mestream_run_refuses_max_faces_of_zero_in_one_line_before_starting(tmp_path, capsys):
    from stand_ins import tiny_video

    from edge.cli import main

    topology = tmp_path / "t.toml"
    topology.write_text((Path(__file__).parents[2] / "edge" / "topology.toml").read_text() + "\n[stages.track]\nmax_faces = 0\n")
    video = tiny_video(tmp_path / "v.avi", 5)
    assert main(["run", "--source", str(video), "--topology", str(topology)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "max_faces=0; expected an integer >= 1" in err and "[stages.track]" in err
