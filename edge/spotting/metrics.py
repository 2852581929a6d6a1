"""The standard spotting metric (MEGC 2019-2022): a hit is IoU >= 0.5 in frames, counts pooled, P/R/F1.

IoU counts frames inclusively: inter = max(0, min(e1, e2) - max(s1, s2) + 1), union = len1 + len2 - inter.
Each truth interval is found at most once and each prediction hits at most one truth (greedy one-to-one
matching, best IoU first). Micro and macro are scored apart (a predicted micro must hit a truth micro);
"overall" adds the two, as the MEGC scripts do. Counts, not ratios, are what pools over videos and folds.

    counts = score_video(predicted, truth)           # {"micro": Counts, "macro": Counts, "overall": Counts}
    total = pool([counts_a, counts_b])               # add counts over videos, then compute P/R/F1
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engines.errors import MestreamError

KINDS = ("micro", "macro")
IOU_HIT = 0.5


@dataclass(frozen=True)
class Interval:
    onset: int  # first frame, inclusive
    offset: int  # last frame, inclusive
    kind: str = "micro"  # "micro" | "macro"; truth files may also hold distractors ("blink", "head")
    apex: int | None = None

    def __post_init__(self) -> None:
        if self.offset < self.onset:
            raise MestreamError(
                f"interval with onset {self.onset} after offset {self.offset}; expected onset <= offset"
            )

    @property
    def frames(self) -> int:
        return self.offset - self.onset + 1


def intervals_of(messages, revised: bool = True) -> list[Interval]:
    """The spotted intervals in these messages, in order. A spotter publishes a held expression's rise as
    micro when the face stops moving, and its release as a macro-expression that revises it (header
    "revises": the earlier interval's onset and offset seq): with revised=True the revised one is left out,
    as a consumer keeping a record would; revised=False gives every interval as published."""
    out, gone = [], set()
    for m in messages:
        if m.topic != "interval":
            continue
        h = m.header
        face = h.get("face_id")  # several faces: each revises its own events
        out.append((face, Interval(h["onset"]["seq"], h["offset"]["seq"], h["kind"], h["apex"]["seq"])))
        if revised and h.get("revises"):
            gone.add((face, int(h["revises"]["onset"]), int(h["revises"]["offset"])))
    return [i for face, i in out if (face, i.onset, i.offset) not in gone or i.kind != "micro"]


def iou(a: Interval, b: Interval) -> float:
    inter = max(0, min(a.offset, b.offset) - max(a.onset, b.onset) + 1)
    union = a.frames + b.frames - inter
    return inter / union


def match(predicted: list[Interval], truth: list[Interval], threshold: float = IOU_HIT) -> list[tuple[int, int]]:
    """One-to-one pairs (predicted index, truth index) with IoU >= threshold, best pairs taken first."""
    pairs = []
    for i, p in enumerate(predicted):
        for j, t in enumerate(truth):
            v = iou(p, t)
            if v >= threshold:
                pairs.append((v, i, j))
    pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        out.append((i, j))
    return sorted(out)


@dataclass(frozen=True)
class Counts:
    tp: int
    predicted: int
    truth: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.predicted + other.predicted, self.truth + other.truth)

    @property
    def precision(self) -> float:
        return self.tp / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "predicted": self.predicted,
            "truth": self.truth,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


ZERO = Counts(0, 0, 0)


def score_video(predicted: list[Interval], truth: list[Interval]) -> dict[str, Counts]:
    """Counts per kind for one video; truth intervals of other kinds (blink, head) are distractors only."""
    for p in predicted:
        if p.kind not in KINDS:
            raise MestreamError(f"predicted interval of kind {p.kind!r}; expected one of {', '.join(KINDS)}")
    out = {}
    for kind in KINDS:
        pk = [p for p in predicted if p.kind == kind]
        tk = [t for t in truth if t.kind == kind]
        out[kind] = Counts(len(match(pk, tk)), len(pk), len(tk))
    out["overall"] = out["micro"] + out["macro"]
    return out


def pool(per_video: Iterable[dict[str, Counts]]) -> dict[str, Counts]:
    total = {k: ZERO for k in (*KINDS, "overall")}
    for counts in per_video:
        total = {k: total[k] + counts[k] for k in total}
    return total
