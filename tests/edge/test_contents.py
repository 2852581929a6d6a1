"""Messages that pass the wire format but would make no sense to their stage are refused before it,
and everything the real stages send one another is accepted."""

import numpy as np
import pytest

from edge.contents import content_problem
from edge.messages import Message


def _crop(side=64, dtype=np.uint8, channels=0):
    shape = (side, side, channels) if channels else (side, side)
    return np.zeros(shape, dtype)


def _point(seq):
    return {"seq": seq, "t_capture_ns": 1000 + seq}


WRONG = [
    (Message("frame", {"seq": 1}, {}), "no 'image'"),
    (Message("frame", {"seq": 1}, {"image": np.zeros((48, 64, 3), np.float32)}), "float32, expected uint8"),
    (Message("frame", {"seq": 1}, {"image": np.zeros((48, 64, 7), np.uint8)}), "shape [48, 64, 7]"),
    (Message("frame", {"seq": 1}, {"image": np.zeros((2, 2), np.uint8)}), "smaller than 16x16"),
    (Message("frame", {"seq": 1}, {"image": np.zeros((4, 4, 4, 3), np.uint8)}), "shape [4, 4, 4, 3]"),
    (Message("frame", {"seq": 1, "gap": "lots"}, {"image": np.zeros((48, 64), np.uint8)}), "gap = 'lots'"),
    (Message("frame", {"seq": 1, "stamps": 5}, {"image": np.zeros((48, 64), np.uint8)}), "stamps"),
    (Message("frame", {"seq": 1, "fps": float("nan")}, {"image": np.zeros((48, 64), np.uint8)}), "fps"),
    (Message("face", {"seq": 1, "found": "yes"}, {}), "found = 'yes'"),
    (Message("face", {"seq": 1, "found": True}, {}), "no 'crop'"),
    (Message("face", {"seq": 1, "found": True}, {"crop": np.zeros((3,), np.float64)}), "float64"),
    (Message("face", {"seq": 1, "found": True}, {"crop": np.zeros((64, 32), np.uint8)}), "square"),
    (Message("face", {"seq": 1, "found": True}, {"crop": _crop(), "crop_color": _crop(32, channels=3)}), "crop_color"),
    (Message("face", {"seq": 1, "found": True}, {"crop": _crop(), "landmarks": np.zeros((478, 3), np.float32)}), "landmarks"),
    (Message("face", {"seq": 1, "found": True, "box": "everywhere"}, {"crop": _crop()}), "box"),
    (Message("interval", {"onset": _point(1), "apex": _point(3), "offset": _point(5)}, {"apex": _crop()}), "no 'onset'"),
    (Message("interval", {"onset": _point(1), "apex": _point(3), "offset": _point(5)}, {"onset": _crop(64), "apex": _crop(32)}), "'apex' is 32x32"),
    (Message("interval", {"onset": "x", "apex": _point(3), "offset": _point(5)}, {"onset": _crop(), "apex": _crop()}), "onset = 'x'"),
    (Message("interval", {"onset": _point(1), "apex": _point(3), "offset": {"seq": 1.5}}, {"onset": _crop(), "apex": _crop()}), "offset"),
    (Message("event", {"offset": [1, 2]}), "offset = [1, 2]"),
    (Message("status", {"stage": 5, "event": "x"}), "stage = 5"),
]


@pytest.mark.parametrize("msg, words", WRONG, ids=[w for _, w in WRONG])
def test_a_well_formed_message_that_makes_no_sense_to_its_stage_is_refused_with_the_reason(msg, words):
    assert words in content_problem(msg)


def test_everything_the_real_stages_send_each_other_is_accepted(assets):
    from edge.process import RunOptions
    from edge.spotting.params import SpotParams
    from edge.spotting.regional import RegionalSpotter
    from edge.stages.base import run_chain
    from edge.stages.face_tracking import FaceTracking, TrackParams
    from edge.stages.registry import build_stage

    class Check:
        name = "check"

        def __init__(self):
            self.seen = {}

        def open(self):
            pass

        def process(self, msg):
            assert content_problem(msg) == "", (msg.topic, content_problem(msg))
            self.seen[msg.topic] = self.seen.get(msg.topic, 0) + 1
            return [msg]

        def close(self):
            pass

    checks = [Check(), Check(), Check()]
    capture = build_stage("capture", {}, RunOptions(source=str(assets / "videos" / "pyfeat_single_face.mp4"), fast=True))
    run_chain(capture, [checks[0], FaceTracking(TrackParams(color_crop=True)), checks[1], RegionalSpotter(SpotParams(warmup_s=0.1, z=2.0)), checks[2]])
    assert checks[0].seen["frame"] == 72 and checks[1].seen["face"] == 72
    assert checks[2].seen.get("interval", 0) >= 1, checks[2].seen  # a smile: the spotter sends at least one interval
