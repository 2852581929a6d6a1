"""Pictures people look at next to the JSON: per-subject accuracy bars (train), written atomically.

matplotlib runs with the Agg backend (no display needed) and is imported inside each function, so
importing this module costs nothing. Every PNG is written to a temporary name and renamed into place.

    per_subject_bars(Path("report/per_subject.png"), rows, "ststnet LOSO seed 0")
"""

from __future__ import annotations

from pathlib import Path

from engines.errors import MestreamError
from engines.files import atomic_path

# one colour per dataset of the MEGC2019 composite (others cycle through the rest)
_DATASET_COLOURS = {"casme2": "tab:blue", "samm": "tab:orange", "smic": "tab:green"}
_OTHER_COLOURS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:grey")


def save_png(fig, path: Path, dpi: int = 110) -> None:
    """Write a figure as PNG via a temporary file in the same folder, then rename: never half-written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MestreamError(f"{path}: folder {path.parent} does not exist; create it first or choose another path")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def dataset_colours(datasets: list[str]) -> dict[str, str]:
    colours, spare = {}, iter(_OTHER_COLOURS * (len(datasets) // len(_OTHER_COLOURS) + 1))
    for d in dict.fromkeys(datasets):
        colours[d] = _DATASET_COLOURS.get(str(d).lower()) or next(spare)
    return colours


def per_subject_bars(path: Path, rows: list[dict], title: str) -> None:
    """One bar per held-out subject: its accuracy (correct/n written on top), coloured by dataset, with the
    accuracy pooled over all subjects as a line. `rows` are trainer.report.per_subject_rows dicts
    (subject, dataset, n, correct, ...), in fold order."""
    if not rows:
        raise MestreamError(f"{path}: no per-subject rows to plot; the run evaluated no fold")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    n = [int(r["n"]) for r in rows]
    correct = [int(r["correct"]) for r in rows]
    acc = [c / max(k, 1) for c, k in zip(correct, n)]
    colours = dataset_colours([str(r.get("dataset", "")) for r in rows])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(rows) + 1.5), 3.8))
    try:
        x = range(len(rows))
        ax.bar(x, acc, color=[colours[str(r.get("dataset", ""))] for r in rows], width=0.8)
        pooled = sum(correct) / max(sum(n), 1)
        line = ax.axhline(pooled, color="black", lw=1, ls="--", label=f"pooled accuracy {pooled:.3f}")
        for i, (c, k) in enumerate(zip(correct, n)):
            ax.text(i, acc[i] + 0.01, f"{c}/{k}", ha="center", va="bottom", fontsize=5.5, rotation=90)
        ax.set_xticks(list(x), [str(r["subject"]) for r in rows], rotation=90, fontsize=6)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("accuracy on the held-out subject")
        ax.set_xlabel("subject (one LOSO fold each)")
        handles = [Patch(color=c, label=d or "?") for d, c in colours.items()] + [line]
        ax.legend(handles=handles, fontsize=7, loc="upper left", ncol=len(handles))
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        save_png(fig, path)
    finally:
        plt.close(fig)
