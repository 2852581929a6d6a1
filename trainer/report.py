"""What a LOSO run leaves behind: report.json, per_subject.csv, predictions.csv, confusion.png, curves.png,
per_subject.png.

Everything is written into a fresh temporary folder next to the destination and renamed into place at the
end, so an interrupted or failed run never leaves a half-written report.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engines.errors import MestreamError
from trainer.metrics import confusion_matrix, pooled_scores, scores_from_confusion, subject_interval


@contextmanager
def staged_dir(out: Path):
    """Yield a temporary folder beside `out`; on success it replaces `out`, on failure it is removed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MestreamError(f"--out {out} is a file; expected a folder path (new or existing)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the report is meant to be read by others
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


INTERVAL_DRAWS, INTERVAL_LEVEL = 2000, 0.95  # bootstrap draws of the subjects for the full figure's interval


def build_report(samples, logits: np.ndarray, fold_of: np.ndarray, parts: tuple[str, ...]) -> dict:
    """Scores pooled over the folds that ran (all of them in a full LOSO)."""
    ran = fold_of >= 0
    predictions = logits.argmax(axis=1)
    labels = samples.labels[ran]
    datasets = np.asarray(samples.datasets)[ran]
    present = tuple(p for p in parts if (datasets == p).any())
    scores = pooled_scores(labels, predictions[ran], datasets, len(samples.classes), present)
    subjects = np.asarray(samples.subjects)[ran]
    interval = subject_interval(labels, predictions[ran], subjects, len(samples.classes), INTERVAL_DRAWS,
                                INTERVAL_LEVEL)
    return {
        "parts": {name: {k: scores[name][k] for k in ("uf1", "uar", "acc", "n")} for name in scores},
        "confusion": {name: scores[name]["confusion"] for name in scores},
        # how far the full figure would move with other subjects like these (trainer/metrics.py subject_interval)
        "interval": {**{k: [round(v, 4) for v in interval[k]] for k in interval}, "level": INTERVAL_LEVEL,
                     "draws": INTERVAL_DRAWS, "resampled": "subjects"},
    }


def per_subject_rows(samples, logits: np.ndarray, fold_of: np.ndarray) -> list[dict]:
    predictions = logits.argmax(axis=1)
    rows = []
    for subject in dict.fromkeys(np.asarray(samples.subjects)[fold_of >= 0].tolist()):
        index = np.flatnonzero((np.asarray(samples.subjects) == subject) & (fold_of >= 0))
        counts = confusion_matrix(samples.labels[index], predictions[index], len(samples.classes))
        s = scores_from_confusion(counts)
        rows.append({"subject": subject, "dataset": samples.datasets[index[0]], "fold": int(fold_of[index[0]]),
                     "n": len(index), "correct": int(np.trace(counts)), "acc": round(s["acc"], 4),
                     "uf1": round(s["uf1"], 4)})
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def prediction_rows(samples, logits: np.ndarray, fold_of: np.ndarray) -> list[dict]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows = []
    for i in np.flatnonzero(fold_of >= 0):
        row = {"name": samples.names[i], "subject": samples.subjects[i], "dataset": samples.datasets[i],
               "fold": int(fold_of[i]), "label": samples.classes[samples.labels[i]],
               "prediction": samples.classes[int(logits[i].argmax())]}
        row.update({f"p_{c}": round(float(p), 5) for c, p in zip(samples.classes, probs[i])})
        rows.append(row)
    return rows


def plot_confusion(path: Path, counts: list[list[int]], classes: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = np.asarray(counts)
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(counts, cmap="Blues")
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > counts.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(path: Path, curves: dict[str, list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = np.arange(1, len(curves["loss"]) + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=120)
    ax.plot(epochs, curves["loss"], label="training loss", color="tab:red")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over folds)")
    twin = ax.twinx()
    twin.plot(epochs, curves["acc"], label="training accuracy", color="tab:blue")
    twin.set_ylabel("accuracy (training subjects)")
    twin.set_ylim(0, 1)
    fig.legend(loc="upper center", ncol=2, fontsize=8)
    ax.set_title(title, fontsize=9, pad=18)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report_files(folder: Path, report: dict, samples, logits, fold_of, curves) -> None:
    folder = Path(folder)
    with open(folder / "report.json", "w") as fh:
        json.dump(report, fh, indent=2)
    subjects = per_subject_rows(samples, logits, fold_of)
    write_csv(folder / "per_subject.csv", subjects)
    write_csv(folder / "predictions.csv", prediction_rows(samples, logits, fold_of))
    full = report["parts"]["full"]
    plot_confusion(folder / "confusion.png", report["confusion"]["full"], samples.classes,
                   f"{report['model']} LOSO seed {report['seed']}: UF1 {full['uf1']:.4f} UAR {full['uar']:.4f}")
    plot_curves(folder / "curves.png", curves, f"{report['model']}: training curves, mean over folds")
    from edge.tools.plots import per_subject_bars

    per_subject_bars(folder / "per_subject.png", subjects, f"{report['model']} LOSO seed {report['seed']}: accuracy per held-out subject")
