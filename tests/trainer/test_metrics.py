import numpy as np
import pytest

from trainer.metrics import confusion_matrix, pooled_scores, scores_from_confusion, subject_interval


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    counts = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_scores_match_a_hand_computed_case():
    # true 0: 3 samples (2 right, 1 -> class 1); true 1: 2 (1 right, 1 -> 2); true 2: 1 (right)
    counts = np.array([[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    s = scores_from_confusion(counts)
    f1 = [2 * 2 / (3 + 2), 2 * 1 / (2 + 2), 2 * 1 / (1 + 2)]  # 2TP / (support + predicted)
    assert s["uf1"] == pytest.approx(np.mean(f1))
    assert s["uar"] == pytest.approx(np.mean([2 / 3, 1 / 2, 1 / 1]))
    assert s["acc"] == pytest.approx(4 / 6)


def test_pooling_sums_counts_over_folds_instead_of_averaging_fold_scores():
    labels = np.array([0, 1, 0, 2])
    preds = np.array([0, 0, 0, 2])
    pooled = pooled_scores(labels, preds, ["a", "a", "b", "b"], 3, ("a", "b"))
    per_fold_mean = np.mean([pooled["a"]["uf1"], pooled["b"]["uf1"]])
    # F1: class 0 = 2*2/(2+3), class 1 = 0, class 2 = 1
    assert pooled["full"]["uf1"] == pytest.approx((0.8 + 0 + 1) / 3)
    assert pooled["full"]["uf1"] != pytest.approx(per_fold_mean)
    assert pooled["full"]["confusion"] == [[2, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_a_class_absent_from_a_part_is_left_out_of_its_averages():
    # part holds only classes 0 and 1, all right: perfect, not 2/3
    s = scores_from_confusion(confusion_matrix(np.array([0, 1]), np.array([0, 1]), 3))
    assert s["uf1"] == 1.0 and s["uar"] == 1.0


def test_a_wrongly_predicted_absent_class_still_counts_against_uf1():
    s = scores_from_confusion(confusion_matrix(np.array([0, 0]), np.array([0, 2]), 3))
    assert s["uf1"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["uar"] == pytest.approx(0.5)


def _two_subjects():
    # subject a: 4 clips all right; subject b: 4 clips, 2 wrong
    labels = np.array([0, 1, 2, 0, 0, 1, 2, 0])
    preds = np.array([0, 1, 2, 0, 1, 0, 2, 0])
    return labels, preds, ["a"] * 4 + ["b"] * 4


def test_the_subject_interval_spans_the_scores_of_its_extreme_draws():
    labels, preds, subjects = _two_subjects()
    interval = subject_interval(labels, preds, subjects, 3, draws=500)
    only_b = scores_from_confusion(confusion_matrix(labels[4:], preds[4:], 3))["uf1"]
    # drawing b twice is the worst case and a twice the best: the interval lies between, and is not a point
    assert only_b <= interval["uf1"][0] < interval["uf1"][1] <= 1.0
    assert interval == subject_interval(labels, preds, subjects, 3, draws=500)  # deterministic


def test_the_subject_interval_of_perfect_predictions_is_a_point_at_one():
    labels, _, subjects = _two_subjects()
    assert subject_interval(labels, labels, subjects, 3, draws=50) == {"uf1": [1.0, 1.0], "uar": [1.0, 1.0]}


def test_the_subject_interval_averages_runs_per_draw():
    labels, preds, subjects = _two_subjects()
    both = subject_interval(labels, np.stack([preds, labels]), subjects, 3, draws=200)
    alone = subject_interval(labels, preds, subjects, 3, draws=200)
    assert both["uf1"][0] > alone["uf1"][0]  # the perfect run lifts every draw's mean


def test_the_subject_interval_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per sample"):
        subject_interval(np.zeros(3), np.zeros(4), ["a"] * 3, 3)
