"""Real clips made into spotting test videos: framed, held still with the clip's own noise, resampled, truth kept."""

import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.spotting.real_clips import CANVAS, ClipTruth, Protocol, compose, frame_in_canvas, frame_noise


def _clip(n=60, noise=2.0, seed=0):
    rng = np.random.default_rng(seed)
    face = rng.integers(40, 200, (300, 260, 3)).astype(np.float32)
    return [np.clip(face + rng.normal(0, noise, face.shape[:2])[..., None], 0, 255).astype(np.uint8) for _ in range(n)]


def test_the_camera_noise_of_a_clip_is_read_from_its_consecutive_frames():
    grey = [f[..., 0] for f in _clip(noise=2.0)]
    assert frame_noise(grey) == pytest.approx(2.0, rel=0.15)


def test_a_clip_is_held_still_a_second_before_and_after_at_its_own_rate_with_the_truth_in_video_frames():
    video = compose(_clip(60), ClipTruth(0, 20, 59), Protocol("still", hold_s=1.0, seed=1), fps=200.0)
    assert len(video.frames) == 200 + 60 + 200
    assert video.frames[0].shape == (CANVAS[1], CANVAS[0], 3)
    assert (video.truth.onset, video.truth.apex, video.truth.offset) == (200, 220, 259)
    # held frames differ from one another by fresh noise at the clip's level, not by a frozen picture
    a, b = (f.astype(np.int16)[100:380, 200:440, 0] for f in video.frames[10:12])
    assert 1.5 < np.std(a - b) / np.sqrt(2) < 2.6


def test_resampled_to_30_fps_the_truth_covers_the_frames_shown_during_the_clip():
    video = compose(_clip(60), ClipTruth(0, 20, 59), Protocol("still", hold_s=1.0), fps=30.0)
    # 460 source frames at 200 fps are 2.3 s: 69 frames at 30 fps; the clip is 200..259 -> 30..38
    assert len(video.frames) == 69
    assert (video.truth.onset, video.truth.offset) == (30, 38)
    assert video.truth.onset <= video.truth.apex <= video.truth.offset


def test_the_drift_protocol_moves_the_whole_picture_slowly():
    still = compose(_clip(20), ClipTruth(0, 5, 19), Protocol("still", hold_s=0.5, seed=2), fps=200.0)
    drift = compose(_clip(20), ClipTruth(0, 5, 19), Protocol("drift", hold_s=0.5, seed=2), fps=200.0)
    first, last = drift.frames[0].astype(np.float32), drift.frames[-1].astype(np.float32)
    assert np.abs(first - last).mean() > np.abs(still.frames[0].astype(np.float32) - still.frames[-1]).mean() + 1.0


def test_a_frame_larger_than_the_camera_picture_is_shrunk_to_fit_it_keeping_its_shape():
    wide = np.full((1088, 2040, 3), 90, np.uint8)  # SAMM's camera
    wide[:, 1020:] = 200
    framed = frame_in_canvas(wide)
    assert framed.shape == (CANVAS[1], CANVAS[0], 3)
    # 2040x1088 -> 640x341: the halves stay halves, the height is padded by replicating the border
    assert framed[240, 310, 0] == 90 and framed[240, 330, 0] == 200
    assert framed[0, 10, 0] == 90


def test_a_100_fps_clip_makes_a_video_at_its_own_rate_and_at_30_fps():
    video = compose(_clip(30), ClipTruth(0, 10, 29), Protocol("still", hold_s=1.0), fps=30.0, clip_fps=100.0)
    # 230 frames at 100 fps are 2.29 s: 69 frames at 30 fps; the clip is 100..129 -> 30..38
    assert len(video.frames) == 69
    assert (video.truth.onset, video.truth.offset) == (30, 38)


def test_the_far_protocol_shows_the_face_at_half_size_with_the_clips_own_noise():
    clip = _clip(20, noise=2.0)
    near = compose(clip, ClipTruth(0, 5, 19), Protocol("still", hold_s=0.5, seed=4), fps=200.0)
    far = compose(clip, ClipTruth(0, 5, 19), Protocol("far", hold_s=0.5, seed=4), fps=200.0)
    assert (far.truth.onset, far.truth.offset) == (near.truth.onset, near.truth.offset)
    # the 260x300 face: 130x150 at the centre, the border replicated beyond it
    inside = far.frames[0][240 - 60 : 240 + 60, 320 - 50 : 320 + 50, 0].astype(np.float32)
    outside = far.frames[0][240 - 60 : 240 + 60, 320 + 80 : 320 + 180, 0].astype(np.float32)
    assert np.std(inside) > 5 * np.std(np.diff(outside, axis=1))
    # shrinking halves the camera noise; the clip's frames get it back up to about 2 grey levels
    grey = [f[200:280, 280:360, 0] for f in far.frames[100:119]]
    assert 1.6 < frame_noise(grey) < 2.5


def test_bad_clips_and_rates_are_refused_in_one_line():
    with pytest.raises(MestreamError, match="does not fit its 10 frames"):
        compose(_clip(10), ClipTruth(0, 5, 12), Protocol(), fps=30.0)
    with pytest.raises(MestreamError, match="fps=300"):
        compose(_clip(10), ClipTruth(0, 5, 9), Protocol(), fps=300.0)
    with pytest.raises(MestreamError, match="protocol 'wobble' is unknown"):
        Protocol("wobble")


def _real_clip_video(assets, uid, fps):
    import cv2

    from trainer.data.casme2 import load_casme2

    sheet = assets / "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx"
    clips = load_casme2(assets / "casme2_cropped/CASME2_Cropped", sheet, "2014-05-08", "casme2-7class").clips
    clip = next(c for c in clips if c.uid == uid)
    frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in clip.frames]
    return compose(frames, ClipTruth(clip.onset - 1, clip.apex - 1, clip.offset - 1), Protocol("still", seed=7), fps)


def _spotted(video):
    from edge.spotting import make_spotter
    from edge.spotting.metrics import Interval
    from edge.stages.base import drain, feed
    from trainer.spotting.features import track_frames

    faces = track_frames("clip", video.frames, video.fps).face_messages()
    spotter = make_spotter()
    spotter.open()
    out = feed([spotter], faces) + drain([spotter])
    spotter.close()
    return [Interval(m.header["onset"]["seq"], m.header["offset"]["seq"], m.header["kind"]) for m in out if m.topic == "interval"]


@pytest.mark.parametrize("uid, fps", [("sub06_EP01_01", 200.0), ("sub17_EP13_01", 30.0), ("sub09_EP09f", 30.0)])
def test_a_real_micro_expression_held_still_is_spotted_as_one_micro_expression_that_ends_when_the_motion_stops(assets, uid, fps):
    # CASME II tuning subjects: sub06 EP01_01 ran on as a macro-expression to the end of the video before
    # events ended when the motion stops; sub17 EP13_01 (AU4) and sub09 EP09f (AU15) have a blink inside and
    # were dropped as blinks
    from edge.spotting.metrics import iou

    video = _real_clip_video(assets, uid, fps)
    found = _spotted(video)
    assert len(found) == 1, found
    assert found[0].kind == "micro" and iou(found[0], video.truth) >= 0.5, (found, video.truth)
