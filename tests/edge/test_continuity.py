from edge.spotting.continuity import restart_reason, starting_fps


def test_a_frame_right_after_the_last_continues_the_window():
    assert restart_reason({"seq": 11, "fps": 30.0}, 10, True, 30.0) is None


def test_a_gap_reported_by_capture_restarts_the_window():
    assert restart_reason({"seq": 11, "fps": 30.0, "gap": 3}, 10, True, 30.0) == "gap of 3 frames before seq 11"


def test_a_jump_in_sequence_numbers_restarts_a_started_window_only():
    assert restart_reason({"seq": 15, "fps": 30.0}, 10, True, 30.0) == "sequence jumped from 10 to 15"
    assert restart_reason({"seq": 15, "fps": 30.0}, 10, False, 30.0) is None


def test_a_frame_rate_change_over_five_percent_restarts_the_window():
    assert restart_reason({"seq": 11, "fps": 25.0}, 10, True, 30.0) == "fps changed from 30 to 25"
    assert restart_reason({"seq": 11, "fps": 31.0}, 10, True, 30.0) is None
    assert restart_reason({"seq": 11, "fps": 0.0}, 10, True, 30.0) is None  # rate unknown: nothing to compare


def test_a_window_starts_at_the_stated_frame_rate_or_30_where_none_is_stated():
    assert starting_fps({"fps": 25.0}) == 25.0
    assert starting_fps({"fps": 0.0}) == 30.0
    assert starting_fps({}) == 30.0
