"""Setting (j+au): (j)'s class probabilities averaged with a 3-class read-out of the action-unit model, under LOSO.

    MESTREAM_ASSETS=../shared/assets python benchmarks/au_fusion.py --assets ../shared/assets \\
        --j-run RUN/cross_form.json --prep-dir PREP [--workers 2] [--json out.json]

RUN is a `cross_form_loso.py --settings j` run (its per-seed probabilities of the re-cut live input); PREP its prep
folder (the 72 clips of other emotions are prepared into it too: the AU model reads all 185 clips). Per fold
(test subject s, every subject of RUN):

1. trainer/action_units.py's AU model, its pool and L2 chosen on the training subjects (choose_on_training),
   reading the re-cut live flow of every clip of the other subjects: out-of-fold AU probabilities of the
   training clips (inner leave-one-subject-out with the fold's pool and L2), and s's AU probabilities from a
   fit on all of them.
2. A 3-class multinomial logistic regression on the 9 AU probabilities as logits, standardised on the training
   clips (L2 1e-2, class-balanced, 500 full-batch gradient steps from zero), fitted on the training subjects'
   3-class clips and their out-of-fold AU probabilities: p_au for s's clips.
3. (j+au) = (p_j + p_au) / 2 per seed.

Prints UF1 per seed and pooled over TUNE / EVAL / all subjects (cross_form_loso.py's split), the clips each
ensemble gets wrong, and p_au alone. The rule it was run under: benchmarks/results/cross_form_loso.md, (j+au).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

L2, STEPS, RATE = 1e-2, 500, 0.5  # the read-out's fixed recipe


def fit_readout(x: np.ndarray, y: np.ndarray, classes: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression (class-balanced, L2) by full-batch gradient descent: (W, b, mean, std)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample_w = (len(y) / (classes * np.maximum(counts, 1.0)))[y]
    onehot = np.eye(classes)[y]
    w, b = np.zeros((z.shape[1], classes)), np.zeros(classes)
    for _ in range(STEPS):
        p = softmax(z @ w + b)
        g = (p - onehot) * sample_w[:, None] / sample_w.sum()
        w -= RATE * (z.T @ g + L2 * w)
        b -= RATE * g.sum(0)
    return w, b, mean, std


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def au_fold(job: tuple) -> np.ndarray:
    """p_au (n_test, 3) for one test subject."""
    from trainer.action_units import choose_on_training, predict_au, train_au_model

    flow, targets, au_subjects, au_names, live_names, live_subjects, live_labels, subject = job
    train = au_subjects != subject
    choice = choose_on_training(flow[train], targets[train], list(au_subjects[train]))
    oof = np.zeros(targets.shape, np.float32)
    for other in sorted(set(au_subjects[train])):
        fit = train & (au_subjects != other)
        oof[au_subjects == other] = predict_au(train_au_model(flow[fit], targets[fit], choice.config), flow[au_subjects == other])
    test_probs = predict_au(train_au_model(flow[train], targets[train], choice.config), flow[~train])
    row = {n: i for i, n in enumerate(au_names)}
    tr = [i for i, s in enumerate(live_subjects) if s != subject]
    te = [i for i, s in enumerate(live_subjects) if s == subject]
    x_train = logit(oof[[row[live_names[i]] for i in tr]])
    w, b, mean, std = fit_readout(x_train, live_labels[tr])
    test_row = {n: k for k, n in enumerate(au_names[~train])}
    x_test = logit(test_probs[[test_row[live_names[i]] for i in te]])
    return softmax((x_test - mean) / std @ w + b)


def scores(labels: np.ndarray, probs: np.ndarray) -> float:
    from trainer.metrics import confusion_matrix, scores_from_confusion

    return scores_from_confusion(confusion_matrix(labels, probs.argmax(1), 3))["uf1"]


def main(argv: list[str] | None = None) -> int:
    from action_units import load_clips as load_au_clips
    from cross_form_loso import EVAL, TUNE, load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, required=True)
    parser.add_argument("--j-run", type=Path, required=True)
    parser.add_argument("--prep-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from edge.perception.composite_framing import COMPOSITE_WINDOW
    from trainer.action_units import au_targets, modelled_aus
    from trainer.prep import reframed_flow

    run = json.loads(args.j_run.read_text())
    _, live = load(args.assets, args.prep_dir, args.workers)
    flow, codes, au_subjects, au_names = load_au_clips(args.assets, args.prep_dir, args.workers)
    flow = reframed_flow(args.prep_dir, au_subjects, au_names, COMPOSITE_WINDOW)
    targets = au_targets(codes, modelled_aus(codes))
    subjects = run["subjects"]
    idx = np.flatnonzero(np.isin(live.subjects, subjects))  # the rows of RUN's probabilities
    names = [live.names[i] for i in idx]
    subj = np.asarray([live.subjects[i] for i in idx])
    labels = np.asarray(live.labels)[idx]
    jobs = [(flow, targets, np.asarray(au_subjects), np.asarray(au_names), names, list(subj), labels, s)
            for s in subjects]
    if args.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(au_fold, jobs))
    else:
        parts = [au_fold(job) for job in jobs]
    p_au = np.zeros((len(idx), 3))
    for s, part in zip(subjects, parts):
        p_au[subj == s] = part
    p_j = {seed: np.asarray(r["probs"]["j"]) for seed, r in run["seeds"].items()}
    fused = {seed: (p + p_au) / 2 for seed, p in p_j.items()}
    parts_of = {"TUNE": np.isin(subj, TUNE), "EVAL": np.isin(subj, EVAL), "all": np.ones(len(subj), bool)}
    out = {"p_au": {}, "j": {}, "j+au": {}, "wrong": {}}
    for part, m in parts_of.items():
        out["p_au"][part] = scores(labels[m], p_au[m])
        for key, probs in (("j", p_j), ("j+au", fused)):
            per_seed = [scores(labels[m], probs[s][m]) for s in sorted(probs)]
            ensemble = np.mean([probs[s] for s in sorted(probs)], axis=0)
            out[key][part] = {"per_seed": [round(v, 4) for v in per_seed], "mean": round(float(np.mean(per_seed)), 4),
                              "ensemble": round(scores(labels[m], ensemble[m]), 4),
                              "ensemble_wrong": int((ensemble[m].argmax(1) != labels[m]).sum())}
    for key, probs in (("j", p_j), ("j+au", fused), ("p_au", {"-": p_au})):
        ensemble = np.mean([probs[s] for s in sorted(probs)], axis=0)
        out["wrong"][key] = sorted(n for n, p, y in zip(names, ensemble, labels) if p.argmax() != y)
    for key in ("j", "j+au"):
        for part in parts_of:
            r = out[key][part]
            print(f"({key}) {part}: UF1 per seed {r['per_seed']}, mean {r['mean']:.4f}; ensemble {r['ensemble']:.4f}, "
                  f"{r['ensemble_wrong']} wrong")
    print("p_au alone: " + ", ".join(f"{part} {v:.4f}" for part, v in out["p_au"].items()))
    for key, wrong in out["wrong"].items():
        print(f"wrong ({key}, ensemble): {', '.join(wrong)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
