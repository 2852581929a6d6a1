from types import SimpleNamespace

import numpy as np

from edge.spotting.intervals import interval_message


def _frame(seq, color=None):
    return SimpleNamespace(seq=seq, t_ns=seq * 1000, box=[1, 2, 3, 4], crop=np.full((8, 8), seq, np.uint8), color=color)


def test_an_interval_message_carries_both_spotters_fields_then_the_frames_times_and_crops():
    msg = interval_message("micro", {"score": 1.5, "method": "learned"}, 30.0, _frame(10), _frame(14), _frame(20))
    assert msg.topic == "interval"
    assert list(msg.header) == ["kind", "score", "method", "fps", "box", "onset", "apex", "offset"]
    assert msg.header["apex"] == {"seq": 14, "t_capture_ns": 14000} and msg.header["box"] == [1, 2, 3, 4]
    assert sorted(msg.arrays) == ["apex", "onset"] and int(msg.arrays["apex"][0, 0]) == 14


def test_the_apex_in_colour_goes_along_where_the_face_stage_sent_one():
    color = np.zeros((8, 8, 3), np.uint8)
    msg = interval_message("macro", {"score": 2.0}, 25.0, _frame(1), _frame(3, color), _frame(9))
    assert msg.arrays["apex_color"] is color
