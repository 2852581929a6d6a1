"""Leave-one-subject-out folds: one fold per subject, in first-appearance order of the samples.

The held-out subject's indices are never shown to training; `inner_split` carves a validation set out of
the training subjects only, for families that choose an epoch by validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    subject: str
    train: np.ndarray  # int64 indices into the samples
    test: np.ndarray


def loso_folds(subjects: list[str], limit: int | None = None) -> list[Fold]:
    """One Fold per subject (the first `limit` subjects when given), test = that subject's samples."""
    subjects_arr = np.asarray(subjects)
    order = list(dict.fromkeys(subjects))
    if limit is not None:
        order = order[:limit]
    folds = []
    for subject in order:
        test = np.flatnonzero(subjects_arr == subject)
        train = np.flatnonzero(subjects_arr != subject)
        folds.append(Fold(subject=subject, train=train, test=test))
    return folds


def inner_split(train: np.ndarray, subjects: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices by subject into (fit, validation); the test subject is not among them."""
    subjects_arr = np.asarray(subjects)[train]
    unique = sorted(set(subjects_arr.tolist()))
    rng = np.random.default_rng(seed)
    count = max(1, int(round(fraction * len(unique))))
    held = set(rng.choice(unique, size=count, replace=False).tolist())
    is_val = np.array([s in held for s in subjects_arr])
    return train[~is_val], train[is_val]
