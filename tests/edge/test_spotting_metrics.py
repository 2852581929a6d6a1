import pytest

from edge.spotting.metrics import Counts, Interval, iou, match, pool, score_video
from engines.errors import MestreamError


def test_iou_counts_frames_inclusively():
    assert iou(Interval(10, 19), Interval(10, 19)) == 1.0
    # 10..19 and 15..24: 5 shared frames out of 15
    assert iou(Interval(10, 19), Interval(15, 24)) == pytest.approx(5 / 15)
    # touching at one frame still shares that frame
    assert iou(Interval(0, 4), Interval(4, 8)) == pytest.approx(1 / 9)
    assert iou(Interval(0, 4), Interval(5, 8)) == 0.0


def test_a_hit_needs_iou_of_at_least_one_half():
    truth = [Interval(0, 9)]
    assert match([Interval(0, 4)], truth) == [(0, 0)]  # 5 / 10
    assert match([Interval(0, 3)], truth) == []  # 4 / 10


def test_each_truth_is_found_once_and_the_best_prediction_gets_it():
    truth = [Interval(100, 109)]
    predicted = [Interval(101, 110), Interval(100, 109), Interval(102, 111)]
    assert match(predicted, truth) == [(1, 0)]


def test_micro_and_macro_are_scored_apart_and_distractors_are_not_truth():
    truth = [Interval(0, 10, "micro"), Interval(50, 90, "macro"), Interval(120, 126, "blink")]
    predicted = [Interval(1, 10, "micro"), Interval(52, 90, "micro"), Interval(120, 126, "micro")]
    s = score_video(predicted, truth)
    assert (s["micro"].tp, s["micro"].predicted, s["micro"].truth) == (1, 3, 1)
    assert (s["macro"].tp, s["macro"].predicted, s["macro"].truth) == (0, 0, 1)
    assert s["overall"] == Counts(1, 3, 2)


def test_scores_pool_counts_over_videos_before_computing_f1():
    a = {"micro": Counts(1, 1, 4), "macro": Counts(0, 0, 0), "overall": Counts(1, 1, 4)}
    b = {"micro": Counts(3, 9, 4), "macro": Counts(0, 0, 0), "overall": Counts(3, 9, 4)}
    total = pool([a, b])["micro"]
    assert total == Counts(4, 10, 8)
    assert total.precision == pytest.approx(0.4)
    assert total.recall == pytest.approx(0.5)
    assert total.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert Counts(0, 0, 3).f1 == 0.0


def test_an_interval_ending_before_it_starts_is_refused():
    with pytest.raises(MestreamError, match="onset 5 after offset 4"):
        Interval(5, 4)
