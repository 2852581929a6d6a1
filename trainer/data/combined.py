"""One training set from several sources: the MEGC2019 composite's images plus raw datasets prepared from frames.

    samples = combine([composite, casme2_from_frames])

LOSO holds out a person, so every sample's subject becomes a person key, "<dataset>/<subject as the composite
names it>": the composite's CASME II "sub05" and the "sub05" read from casme2_cropped are one person, one fold,
while SMIC's "s01" and MMEW's "S01" stay apart. Samples made from frames are reported as their own part,
"<dataset>-frames" (e.g. "casme2-frames"), beside the composite's "casme2", "samm" and "smic"; the same clips
in a second framing (`mestream train --both-framings`) are the part "<dataset>-frames-uncut".
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from engines.errors import MestreamError
from trainer.data.composite import composite_subject
from trainer.data.samples import Samples

FRAMES_SUFFIX = "-frames"
UNCUT_SUFFIX = "-frames-uncut"


def person(dataset: str, subject: str) -> str:
    """The LOSO unit of a sample of `dataset` ("casme2", "samm", ...; a "-frames" part counts as its dataset)."""
    dataset = dataset.split(FRAMES_SUFFIX)[0]
    return f"{dataset}/{composite_subject(dataset, subject)}"


def as_frames_part(samples: Samples, suffix: str = FRAMES_SUFFIX) -> Samples:
    """The same samples, reported as "<dataset><suffix>" parts (made from frames by `mestream prep`'s code)."""
    from dataclasses import replace

    return replace(samples, datasets=[d.split(FRAMES_SUFFIX)[0] + suffix for d in samples.datasets])


def combine(parts: list[Samples]) -> Samples:
    """The parts' samples one after another, subjects as person keys; all parts must share one class list."""
    if not parts:
        raise MestreamError("no training data to combine; pass --data/--labels and any --add sources")
    classes = parts[0].classes
    for part in parts[1:]:
        if part.classes != classes:
            raise MestreamError(f"classes {part.classes} of {sorted(set(part.datasets))} differ from {classes}; "
                                "give the added dataset the same classes (--class-map, e.g. megc2019-3class)")
    counts = Counter(f"{d}/{n}" for part in parts for d, n in zip(part.datasets, part.names))
    dupes = sorted(n for n, k in counts.items() if k > 1)
    if dupes:
        raise MestreamError(f"sample {dupes[0]!r} comes twice; add each dataset once")
    return Samples(
        names=[n for part in parts for n in part.names],
        subjects=[person(d, s) for part in parts for d, s in zip(part.datasets, part.subjects)],
        datasets=[d for part in parts for d in part.datasets],
        labels=np.concatenate([part.labels for part in parts]).astype(np.int64),
        flow=np.concatenate([part.flow for part in parts]).astype(np.float32),
        apex=np.concatenate([part.apex for part in parts]).astype(np.uint8),
        au_text=[t for part in parts for t in part.au_text],
        classes=list(classes),
        skipped=[s for part in parts for s in part.skipped],
    )
