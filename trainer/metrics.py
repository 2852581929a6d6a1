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


def subject_draws(count: int, draws: int = 2000, seed: int = 0) -> np.ndarray:
    """(draws, count): how often each of `count` subjects is drawn in each bootstrap draw of `count` subjects
    with replacement. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, count, count), minlength=count) for _ in range(draws)])


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """[low, high]: the central `level` of `values` (percentiles)."""
    tail = (1.0 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def subject_interval(labels: np.ndarray, predictions: np.ndarray, subjects: Sequence[str], num_classes: int,
                     draws: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, list[float]]:
    """Percentile intervals of the pooled UF1 and UAR when the subjects are drawn again, with replacement.

    A LOSO figure on 18 subjects moves by a few hundredths when one subject's clips change, far more than
    between seeds; this says how far. Each draw pools the clips of the drawn subjects (a subject drawn twice
    counts twice) and scores them as scores_from_confusion does. `predictions` is (N,) or (R, N) for R runs
    (seeds): each run is scored on the draw and the R scores are averaged, as a mean-of-seeds figure is.
    Deterministic for a given seed. Returns {"uf1": [low, high], "uar": [low, high]}.
    """
    labels = np.asarray(labels, dtype=np.int64)
    runs = np.atleast_2d(np.asarray(predictions, dtype=np.int64))
    subjects = np.asarray(list(subjects))
    if runs.shape[1] != len(labels) or len(subjects) != len(labels):
        raise ValueError(f"labels ({len(labels)}), predictions ({runs.shape[1]}) and subjects ({len(subjects)}) "
                         "must have one entry per sample")
    names = list(dict.fromkeys(subjects.tolist()))
    # confusion of every (run, subject): a draw's pooled confusion is their sum weighted by how often each was drawn
    per_subject = np.stack([np.stack([confusion_matrix(labels[subjects == s], run[subjects == s], num_classes)
                                      for s in names]) for run in runs])  # (R, K, C, C)
    pooled = np.einsum("dk,rkij->drij", subject_draws(len(names), draws, seed), per_subject)
    values = {"uf1": np.zeros(draws), "uar": np.zeros(draws)}
    for d in range(draws):
        scored = [scores_from_confusion(pooled[d, r]) for r in range(len(runs))]
        for key in values:
            values[key][d] = np.mean([s[key] for s in scored])
    return {key: percentile_interval(v, level) for key, v in values.items()}
