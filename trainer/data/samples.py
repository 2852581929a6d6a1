"""The labelled micro-expression samples every family trains on, as plain numpy arrays.

One `Samples` holds N clips in a fixed order (the CSV order). Arrays are indexed by sample; the LOSO
split works on `subjects`, the per-part scores on `datasets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ["negative", "positive", "surprise"]
PARTS = ("casme2", "smic", "samm")


@dataclass
class Samples:
    names: list[str]  # CSV imagename stem, e.g. "sub01_EP02_01f"
    subjects: list[str]  # LOSO unit: the CSV "sub" column
    datasets: list[str]  # "casme2" | "smic" | "samm"
    labels: np.ndarray  # int64 (N,)
    flow: np.ndarray  # float32 (N, 3, 28, 28): u, v, optical strain, PNG bytes / 255
    apex: np.ndarray  # uint8 (N, 224, 224, 3) RGB apex crop
    au_text: list[str]  # FACS action units as text, "" when unknown
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    skipped: list[str] = field(default_factory=list)  # rows dropped because a file was missing or unreadable

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> Samples:
        """The samples at `index` (int array), in that order; `skipped` is carried over unchanged."""
        index = np.asarray(index, dtype=np.int64)
        pick = lambda seq: [seq[i] for i in index]  # noqa: E731
        return Samples(
            names=pick(self.names),
            subjects=pick(self.subjects),
            datasets=pick(self.datasets),
            labels=self.labels[index],
            flow=self.flow[index],
            apex=self.apex[index],
            au_text=pick(self.au_text),
            classes=list(self.classes),
            skipped=list(self.skipped),
        )
