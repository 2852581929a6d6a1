"""UF1, UAR, accuracy and the confusion matrix, on predictions pooled over all LOSO folds.

MEGC2019 convention: every fold's predictions are collected first and the scores are computed once on
the pooled set (TP/FP/FN summed over folds), for the full composite and for each part. A class absent
from a part (no true and no predicted sample) is left out of that part's averages rather than counted
as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted], int64 (C, C)."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def scores_from_confusion(counts: np.ndarray) -> dict[str, float]:
    """uf1 (mean per-class F1), uar (mean per-class recall), acc, over classes present in truth or prediction."""
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.diag(counts)
    support = counts.sum(axis=1)  # TP + FN
    predicted = counts.sum(axis=0)  # TP + FP
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=(support + predicted) > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    total = counts.sum()
    return {
        "uf1": float(f1[present].mean()) if present.any() else 0.0,
        # recall is undefined for a class with no true sample: average over classes that have support
        "uar": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "acc": float(tp.sum() / total) if total else 0.0,
        "n": int(total),
    }


def pooled_scores(
    labels: np.ndarray, predictions: np.ndarray, parts: Sequence[str], num_classes: int, part_names: Sequence[str]
) -> dict[str, dict]:
    """{"full": {...}, part: {...}} each with uf1, uar, acc, n and its confusion matrix (list of lists)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    parts = np.asarray(list(parts))
    out = {}
    for name in ("full", *part_names):
        mask = np.ones(len(labels), bool) if name == "full" else parts == name
        counts = confusion_matrix(labels[mask], predictions[mask], num_classes)
        out[name] = {**scores_from_confusion(counts), "confusion": counts.tolist()}
    return out
