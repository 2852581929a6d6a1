import numpy as np
import pytest

from trainer.metrics import confusion_matrix, pooled_scores, scores_from_confusion


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
