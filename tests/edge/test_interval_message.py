from types import SimpleNamespace

import numpy as np

from edge.spotting.intervals import interval_message


def _frame(seq, color=None):
    return SimpleNamespace(seq=seq, t_ns=seq * 1000, box=[1, 2, 3, 4], crop=np.full((8, 8), seq, np.uint8), color=color)


def test_an_interval_message_carries_both_spotters_fields_then_the_frames_times_and_crops():
    msg = interval_message("micro", {"score": 1.5, "method": "learned"}, 30.0, _frame(10), _frame(14), _frame(20))
    assert msg.topic == "interval"
    assert list(msg.header) == ["kind", "score", "method", "fps", "box", "onset", "apex", "offset", "flow_onset"]
    assert msg.header["flow_onset"] == msg.header["onset"]  # the onset's crop unless another frame is given
    assert msg.header["apex"] == {"seq": 14, "t_capture_ns": 14000} and msg.header["box"] == [1, 2, 3, 4]
    assert sorted(msg.arrays) == ["apex", "onset"] and int(msg.arrays["apex"][0, 0]) == 14


def test_the_apex_in_colour_goes_along_where_the_face_stage_sent_one():
    color = np.zeros((8, 8, 3), np.uint8)
    msg = interval_message("macro", {"score": 2.0}, 25.0, _frame(1), _frame(3, color), _frame(9))
    assert msg.arrays["apex_color"] is color


def test_the_onset_crop_can_come_from_an_earlier_frame_than_the_onset_and_says_which():
    msg = interval_message("micro", {"score": 1.0}, 200.0, _frame(10), _frame(14), _frame(20), flow_onset=_frame(7))
    assert msg.header["onset"]["seq"] == 10 and msg.header["flow_onset"] == {"seq": 7, "t_capture_ns": 7000}
    assert int(msg.arrays["onset"][0, 0]) == 7
