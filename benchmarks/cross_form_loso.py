"""Cross-form LOSO: models judged on what the live pipeline feeds them (issue 18, items 1 and 2).

    python benchmarks/cross_form_loso.py --assets $MESTREAM_ASSETS --out runs/cross_form [--model ststnorm]
        [--seeds 0 1 2] [--workers 2] [--prep-dir runs/.mestream-prep/casme2] [--settings j ...]
        [--spot-work WORK [--spot-option apex_frac=0.5 ...]] [--models DIR]

For every CASME II subject that is both in the composite and in casme2_cropped (3 classes, megc2019-3class),
one fold holds that subject out and trains, with the family's fixed recipe and nothing chosen by a test
subject, three models from scratch:

    A  the composite without the subject        -> (a) its composite images (composite form)
                                                -> (c) the live-form inputs of its real clips (cross form)
    B  live-form CASME II of the other subjects -> (b) the live-form inputs (live form; = mestream train
                                                       --dataset casme2, same fold seeds)
    D  live-form CASME II of the other subjects
       + the composite's SAMM and SMIC          -> (d) the live-form inputs (real frames where we have them)

    A                                           -> (g) the live-form inputs of crops re-cut to the composite's
                                                       framing (edge/perception/composite_framing.py; what the
                                                       classify stage feeds an artifact declaring crop_window)
    H  re-cut live-form CASME II of the others  -> (h) re-cut live form
    I  re-cut live-form CASME II of the others
       + the composite without the subject      -> (i) re-cut live form (the shipped default's recipe)
    J  I + the same clips' crops as they come   -> (j) re-cut live form
                                                -> (j-uncut) the live form of the crops as they come
                                                -> (j-tta) the mean probability of (j)'s and (j-uncut)'s input
                                                -> (j-comp) the subject's composite images
    K  J + each live clip re-cut to K_WINDOWS
       jittered windows                         -> (k) re-cut live form
    L  J trained for L_EPOCHS epochs            -> (l) re-cut live form
    M  J with the composite's CASME II only     -> (m) re-cut live form
    N  J on live inputs shrunk to 28 by a
       triangle filter instead of area          -> (n) re-cut live form, shrunk the same way
    O  J on live inputs whose apex crop is put
       back into the onset crop's alignment     -> (o) re-cut live form, made the same way
    R  J trained with mixup (alpha R_ALPHA)     -> (r) re-cut live form
    Q  J + each live clip's flow to the sampled
       frames nearest the apex, before and after -> (q) re-cut live form
                                                -> (q-near) / (j-near): Q's / J's models on the held-out clips'
                                                   near-apex inputs (mean probability of before and after)
    S  J + each live clip's re-cut flow at the
       live spotter's frames in its test video,
       200 and 30 fps (needs --spot-work)       -> (s) re-cut live form
(e) to (s) on request (--settings). With `--spot-work WORK` (benchmarks/spotting_real.py's --work, its videos
tracked there), (j)'s and (q)'s models are also tested end to end, on the flow the live pipeline would feed them
from each clip's test video: (j-vid) the sheet's onset and apex, (j-spot) the onset and apex of the live
spotter's event (its onset crop's frame, header flow_onset), both in the video at 200 fps, (j-spot30) the
spotter's at 30 fps; (q-vid), (s-vid), ... likewise; the still videos unless --spot-protocol drift or far.
`--shipped` scores the shipped weights instead. With several seeds the
seeds' models are also scored as one ensemble (mean probability; OUT/cross_form.json "ensemble").

Live form = `mestream prep` on the cropped frames (edge tracker + the live TV-L1 preset), the same code
and parameters the classify stage runs (trainer/clips.py samples_from_clips). Scores are UF1/UAR pooled over
the folds of one seed, then mean ± std over seeds. "matched" rows score (a) and (c) on the clips present
in both forms only; "tune" and "eval" rows pool only the folds of the TUNE or the EVAL subjects (candidates are
compared on TUNE only, see TUNE below). Writes OUT/cross_form.json and OUT/cross_form.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COMPOSITE = "preprocessed/HTNet_MEGC2019_composite"
COMPOSITE_CSV = "annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"
FRAMES = "casme2_cropped/CASME2_Cropped"
SHEET = "annotations/MouathAb_AnalyseMiE/CASME2-coding-20190701.xlsx"
SETTINGS = ("a", "b", "c", "d")  # the four; e to r on request (--settings)
MEANING = {
    "a": "composite-form LOSO: train composite w/o subject, test its composite images",
    "b": "live-form LOSO: train live-form CASME II of the other shared subjects, test live form",
    "c": "cross-form: train composite w/o subject, test live form",
    "d": "train live-form CASME II (others) + composite SAMM and SMIC, test live form",
    "e": "train live-form CASME II (others) + composite without the shared CASME II subjects, test live form",
    "f": "train live-form CASME II (others) + composite w/o subject (both forms), test live form",
    "g": "cross-form, composite framing: train composite w/o subject, test live form of crops re-cut to COMPOSITE_WINDOW",
    "h": "live-form LOSO, composite framing: train and test live form of re-cut crops",
    "i": "train re-cut live-form CASME II (others) + composite w/o subject, test re-cut live form",
    "j": "train live-form CASME II (others) both re-cut and as they come + composite w/o subject, test re-cut live form",
    "j-uncut": "the (j) models, test live form of the crops as they come",
    "j-tta": "the (j) models, test the mean probability of the re-cut and the uncut live form",
    "j-comp": "the (j) models, test the subject's composite images",
    "k": "(j) + each live training clip also re-cut to 2 jittered windows (edges ±0.02), test re-cut live form",
    "l": "(j) trained for 80 epochs instead of 50, test re-cut live form",
    "m": "(j) with the composite's CASME II only (no SAMM, no SMIC), test re-cut live form",
    "n": "(j) with every live input's u, v, strain shrunk to 28x28 by a triangle filter instead of area, test so",
    "o": "(j) with every live input's apex crop put back into the onset crop's alignment, test so",
    "q": "(j) + each live training clip's re-cut flow to the sampled frames nearest the apex, test re-cut live form",
    "r": "(j) trained with mixup (alpha 0.2 per batch, loss mixed as the inputs), test re-cut live form",
    "s": "(j) + each live training clip's re-cut flow at the live spotter's frames of its test video (200 and 30 fps), "
         "test re-cut live form",
    "q-near": "the (q) models, test the mean probability of the near-apex re-cut inputs (apex ~20-25 ms off)",
    "j-near": "the (j) models, test the mean probability of the near-apex re-cut inputs (apex ~20-25 ms off)",
}
J_TESTS = ("j-uncut", "j-tta", "j-comp")  # scored on the (j) models whenever (j) runs, no extra training
COMPOSITE_TESTS = ("a", "j-comp")  # settings tested on composite images; the others on live clips
FRAMED = ("g", "h", "i", "j", "k", "l", "m", "n", "o", "q", "r", "s")  # settings whose live inputs are cut to the composite's framing
# Subjects split as benchmarks/spotting_real.py splits them (its TUNE and EVAL that have clips here): recipes are
# chosen on the TUNE folds' pooled scores only; EVAL and all-18 figures are reported, never used to choose.
TUNE = ("sub02", "sub06", "sub07", "sub09", "sub13", "sub15", "sub17", "sub20", "sub25")
EVAL = ("sub03", "sub05", "sub08", "sub11", "sub14", "sub16", "sub23", "sub24", "sub26")
K_WINDOWS, K_SPREAD = 2, 0.02  # (k): extra jittered windows per clip, each edge moved within ±K_SPREAD of the side
L_EPOCHS = 80  # (l)
R_ALPHA = 0.2  # (r): mixup's Beta(alpha, alpha), Zhang et al.'s ImageNet value
REMADE = ("n", "o")  # settings whose live inputs (both framings) are remade from the prepared crops another way
NEAR = {"q": "q-near", "j": "j-near"}  # near-apex test inputs, scored when (q) runs
# End-to-end test inputs from spotting_real's tracked test videos (protocol --spot-protocol): (fps, onset and apex
# from the spotter?)
VIDEO_TESTS = {"vid": (200.0, False), "spot": (200.0, True), "spot30": (30.0, True)}
VIDEO_MEANING = {"vid": "the sheet's onset and apex frames of the clip's test video, 200 fps",
                 "spot": "the live spotter's onset crop (flow_onset) and apex in the clip's test video, 200 fps",
                 "spot30": "the live spotter's onset crop (flow_onset) and apex in the clip's test video, 30 fps"}
VIDEO_TESTED = ("j", "q", "s")  # the settings whose models are also tested end to end
MEANING.update({f"{k}-{t}": f"the ({k}) models, test re-cut live form from {text}"
                for k in VIDEO_TESTED for t, text in VIDEO_MEANING.items()})


@dataclass
class Job:
    """One model of one fold: train on (arrays, labels), predict each named test set."""

    family: str
    train: dict[str, np.ndarray]
    labels: np.ndarray
    tests: dict[str, dict[str, np.ndarray]]
    seed: int
    num_classes: int
    epochs: int | None = None  # None: the family's recipe
    mixup: float = 0.0  # (r): Beta(mixup, mixup) batch mixing; 0 = none
    model_path: str | None = None  # --models: the trained weights, loaded from there when present, else saved there


def run_job(job: Job) -> dict[str, np.ndarray]:
    from trainer.models.registry import get_family
    from trainer.train import predict, train_model

    family = get_family(job.family)
    if job.mixup:
        family = replace(family, build=MixupBuild(family.build, job.mixup))
    names = [spec.name for spec in family.inputs]
    recipe = family.recipe if job.epochs is None else replace(family.recipe, epochs=job.epochs)
    path = Path(job.model_path) if job.model_path else None
    if path is not None and path.is_file():
        import torch

        model = family.build(job.num_classes)
        model.load_state_dict(torch.load(path, map_location="cpu"))
    else:
        model = train_model(family, job.train, job.labels, None, recipe, job.seed, job.num_classes).model
        if path is not None:
            import torch

            torch.save(model.state_dict(), path)
    return {key: predict(model, arrays, names) for key, arrays in job.tests.items()}


class MixupBuild:
    """(r): builds the family's STSTEnsemble with a mixup training loss (the members' summed cross-entropies of
    the mixed batch against both label sets, weighted by lam); prediction and export are unchanged."""

    def __init__(self, build, alpha: float) -> None:
        self.build, self.alpha = build, alpha

    def __call__(self, num_classes: int, **options):
        import torch

        model = self.build(num_classes, **options)
        beta = torch.distributions.Beta(torch.tensor(self.alpha), torch.tensor(self.alpha))

        def training_loss(batch, labels):
            flow = batch["flow"]
            lam = float(beta.sample())
            perm = torch.randperm(flow.shape[0])
            logits = model.member_logits(lam * flow + (1.0 - lam) * flow[perm])  # (E, B, C)
            flat = logits.reshape(-1, logits.shape[-1])
            ce = torch.nn.functional.cross_entropy
            loss = (lam * ce(flat, labels.repeat(model.members), reduction="sum")
                    + (1.0 - lam) * ce(flat, labels[perm].repeat(model.members), reduction="sum")) / labels.shape[0]
            return loss, torch.log_softmax(logits, dim=-1).mean(dim=0)

        model.training_loss = training_loss
        return model


def take(arrays: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: a[index] for name, a in arrays.items()}


def joined(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def fold_jobs(family: str, comp, comp_x, live, live_x, subject: str, seed: int,
              settings: tuple[str, ...] = SETTINGS, shared: tuple[str, ...] = (),
              framed_x: dict[str, np.ndarray] | None = None,
              jittered_x: tuple[dict[str, np.ndarray], ...] = (),
              remade_x: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] | None = None,
              near_x: tuple[dict[str, np.ndarray], ...] = (),
              video_x: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Job]:
    """The models of one fold, one per training set; fold seed as `mestream train --dataset casme2` gives
    this subject. `shared`: the subjects that have frames (setting e drops their composite images);
    `jittered_x`: the live clips re-cut to their jittered windows (setting k); `remade_x`: setting -> (the live
    inputs as they come, re-cut) made that setting's way (REMADE); `near_x`: the live clips' re-cut flow to the
    sampled frames nearest the apex, before and after (setting q); `video_x`: VIDEO_TESTS name -> the live clips'
    inputs from their tracked test videos, tested on (j)'s and (q)'s models."""
    from trainer.train import fold_seed

    c_subj, l_subj = np.asarray(comp.subjects), np.asarray(live.subjects)
    c_test, l_test = np.flatnonzero(c_subj == subject), np.flatnonzero(l_subj == subject)
    c_train, l_train = np.flatnonzero(c_subj != subject), np.flatnonzero(l_subj != subject)
    other_parts = np.flatnonzero(np.isin(np.asarray(comp.datasets), ("samm", "smic")))
    no_frames = np.flatnonzero(~np.isin(c_subj, (subject, *shared)))  # composite where we have no frames
    k = list(dict.fromkeys(live.subjects)).index(subject)
    s = fold_seed(seed, k)
    live_test = take(live_x, l_test)

    def with_live(index):  # live-form CASME II of the other subjects + these composite samples
        return joined(take(live_x, l_train), take(comp_x, index)), np.concatenate(
            [live.labels[l_train], comp.labels[index]])

    jobs = {}
    framed_test = take(framed_x, l_test) if framed_x is not None else None
    if {"a", "c", "g"} & set(settings):
        tests = {"a": take(comp_x, c_test), "c": live_test, "g": framed_test}
        jobs["A"] = Job(family, take(comp_x, c_train), comp.labels[c_train],
                        {k: v for k, v in tests.items() if k in settings}, s, 3)
    if "b" in settings:
        jobs["B"] = Job(family, take(live_x, l_train), live.labels[l_train], {"b": live_test}, s, 3)
    for key, index in (("d", other_parts), ("e", no_frames), ("f", c_train)):
        if key in settings:
            jobs[key.upper()] = Job(family, *with_live(index), {key: live_test}, s, 3)
    if "h" in settings:
        jobs["H"] = Job(family, take(framed_x, l_train), live.labels[l_train], {"h": framed_test}, s, 3)
    if "i" in settings:
        jobs["I"] = Job(family, joined(take(framed_x, l_train), take(comp_x, c_train)),
                        np.concatenate([live.labels[l_train], comp.labels[c_train]]), {"i": framed_test}, s, 3)
    if "j" in settings:  # the two framings of the same clips: framing jitter as augmentation
        jobs["J"] = Job(family, joined(take(framed_x, l_train), take(live_x, l_train), take(comp_x, c_train)),
                        np.concatenate([live.labels[l_train], live.labels[l_train], comp.labels[c_train]]),
                        {k: v for k, v in (("j", framed_test), ("j-uncut", live_test), ("j-comp", take(comp_x, c_test)))
                         if k in settings}, s, 3)
    j_train = (take(framed_x, l_train), take(live_x, l_train), take(comp_x, c_train)) if framed_x is not None else ()
    j_labels = np.concatenate([live.labels[l_train], live.labels[l_train], comp.labels[c_train]])
    if "k" in settings:
        jobs["K"] = Job(family, joined(*j_train, *(take(x, l_train) for x in jittered_x)),
                        np.concatenate([j_labels, *[live.labels[l_train]] * len(jittered_x)]), {"k": framed_test}, s, 3)
    if "l" in settings:
        jobs["L"] = Job(family, joined(*j_train), j_labels, {"l": framed_test}, s, 3, epochs=L_EPOCHS)
    if "m" in settings:  # (j) with the composite's CASME II only: the live domain without SAMM's and SMIC's cameras
        c_casme = np.setdiff1d(c_train, other_parts)
        jobs["M"] = Job(family, joined(take(framed_x, l_train), take(live_x, l_train), take(comp_x, c_casme)),
                        np.concatenate([live.labels[l_train], live.labels[l_train], comp.labels[c_casme]]),
                        {"m": framed_test}, s, 3)
    if "r" in settings:
        jobs["R"] = Job(family, joined(*j_train), j_labels, {"r": framed_test}, s, 3, mixup=R_ALPHA)
    if "q" in settings:  # apex error as augmentation: the onset against frames ~20-25 ms from the apex
        jobs["Q"] = Job(family, joined(*j_train, *(take(x, l_train) for x in near_x)),
                        np.concatenate([j_labels, *[live.labels[l_train]] * len(near_x)]),
                        {"q": framed_test, "q-near-0": take(near_x[0], l_test), "q-near-1": take(near_x[1], l_test)},
                        s, 3)
        if "J" in jobs:
            jobs["J"].tests.update({"j-near-0": take(near_x[0], l_test), "j-near-1": take(near_x[1], l_test)})
    if "s" in settings:  # the live training clips also as the live pipeline cuts them: at the spotter's frames
        spotted = [take(video_x[t], l_train) for t in ("spot", "spot30")]
        jobs["S"] = Job(family, joined(*j_train, *spotted),
                        np.concatenate([j_labels, *[live.labels[l_train]] * len(spotted)]), {"s": framed_test}, s, 3)
    for key in VIDEO_TESTED:
        if key.upper() in jobs:
            jobs[key.upper()].tests.update({f"{key}-{t}": take(x, l_test) for t, x in (video_x or {}).items()})
    for key, (uncut_x, recut_x) in (remade_x or {}).items():  # (j)'s recipe, every live input made another way
        jobs[key.upper()] = Job(family, joined(take(recut_x, l_train), take(uncut_x, l_train), take(comp_x, c_train)),
                                j_labels, {key: take(recut_x, l_test)}, s, 3)
    return jobs


def scores(labels: np.ndarray, logits: np.ndarray) -> dict:
    from trainer.metrics import confusion_matrix, scores_from_confusion

    counts = confusion_matrix(labels, logits.argmax(axis=1), 3)
    return {**scores_from_confusion(counts), "confusion": counts.tolist()}


def run_seed(family: str, comp, comp_x, live, live_x, subjects: list[str], seed: int, workers: int,
             settings: tuple[str, ...] = SETTINGS, framed_x: dict[str, np.ndarray] | None = None,
             jittered_x: tuple[dict[str, np.ndarray], ...] = (),
             remade_x: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] | None = None,
             near_x: tuple[dict[str, np.ndarray], ...] = (),
             video_x: dict[str, dict[str, np.ndarray]] | None = None, models: Path | None = None) -> dict:
    """Pooled logits of every setting for one seed, then its scores. `models`: a folder the fold models are
    saved to, or loaded from where they are already there (same recipe and inputs: use a new folder otherwise)."""
    jobs = {(subj, m): job for subj in subjects
            for m, job in fold_jobs(family, comp, comp_x, live, live_x, subj, seed, settings, tuple(subjects),
                                      framed_x, jittered_x, remade_x, near_x, video_x).items()}
    if models is not None:
        models.mkdir(parents=True, exist_ok=True)
        jobs = {(subj, m): replace(job, model_path=str(models / f"{family}-{m}-{subj}-seed{seed}.pt"))
                for (subj, m), job in jobs.items()}
    results: dict[tuple[str, str], dict] = {}
    if workers <= 1:
        results = {key: run_job(job) for key, job in jobs.items()}
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {key: pool.submit(run_job, job) for key, job in jobs.items()}
            results = {key: f.result() for key, f in futures.items()}
    comp_idx = np.flatnonzero(np.isin(comp.subjects, subjects))
    live_idx = np.flatnonzero(np.isin(live.subjects, subjects))
    form = {k: (comp if k in COMPOSITE_TESTS else live) for k in settings}  # which form each setting is tested on
    tested = {k: (comp_idx if k in COMPOSITE_TESTS else live_idx) for k in settings}
    logits = {k: np.zeros((len(form[k]), 3), np.float32) for k in settings}
    near = {f"{k}-{i}": np.zeros((len(live), 3), np.float32) for k in settings if k.endswith("-near") for i in (0, 1)}
    for (subj, _model), predicted in results.items():
        for k, values in predicted.items():
            target = near if k in near else logits
            target[k][np.flatnonzero(np.asarray((live if k in near else form[k]).subjects) == subj)] = values
    for k in [k for k in settings if k.endswith("-near")]:  # log of the mean probability of before and after
        logits[k] = np.log((softmax(near[f"{k}-0"]) + softmax(near[f"{k}-1"])) / 2).astype(np.float32)
    if "j-tta" in settings:  # log of the mean probability: its argmax and softmax are the average's
        logits["j-tta"] = np.log((softmax(logits["j"]) + softmax(logits["j-uncut"])) / 2).astype(np.float32)
    out = {k: scores(form[k].labels[tested[k]], logits[k][tested[k]]) for k in settings}
    for k in settings:  # the same pooled scores over the TUNE folds and over the EVAL folds
        for part, members in (("tune", TUNE), ("eval", EVAL)):
            idx = tested[k][np.isin(np.asarray(form[k].subjects)[tested[k]], members)]
            out[f"{k}_{part}"] = scores(form[k].labels[idx], logits[k][idx])
    # every setting on the same clips: those whose name is in both forms (and whose labels agree)
    comp_pos = {n: i for i, n in enumerate(comp.names)}
    live_set = set(live_idx.tolist())
    both = [(comp_pos[n], j) for j, n in enumerate(live.names)
            if n in comp_pos and j in live_set and comp.labels[comp_pos[n]] == live.labels[j]]
    ci, lj = (np.asarray(x, dtype=np.int64) for x in zip(*both))
    for k in settings:
        idx = ci if k in COMPOSITE_TESTS else lj
        out[f"{k}_matched"] = scores(form[k].labels[idx], logits[k][idx])
    per_subject = {}
    for subj in subjects:
        per_subject[subj] = {"n_composite": int(np.sum(np.asarray(comp.subjects)[comp_idx] == subj)),
                             "n_live": int(np.sum(np.asarray(live.subjects)[live_idx] == subj))}
        for k in settings:
            idx = np.flatnonzero(np.asarray(form[k].subjects) == subj)
            per_subject[subj][f"acc_{k}"] = float(np.mean(logits[k][idx].argmax(1) == form[k].labels[idx])) if len(idx) else None
    out["per_subject"] = per_subject
    out["matched_clips"] = len(both)
    out["probs"] = {k: softmax(logits[k][tested[k]]).round(6).tolist() for k in settings}
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def tested_samples(setting: str, comp, live, subjects: list[str]):
    """(samples, indices): the form a setting is tested on and its samples of these subjects."""
    samples = comp if setting in COMPOSITE_TESTS else live
    return samples, np.flatnonzero(np.isin(samples.subjects, subjects))


def ensemble_scores(by_seed: dict[int, dict], comp, live, subjects: list[str]) -> dict:
    """Each setting's test samples scored on the mean probability of the seeds' models (one ensemble per fold)."""
    out = {}
    for k in next(iter(by_seed.values()))["probs"]:
        mean = np.mean([np.asarray(r["probs"][k]) for r in by_seed.values()], axis=0)
        samples, idx = tested_samples(k, comp, live, subjects)
        labels = samples.labels[idx]
        # the clips the ensemble gets wrong, by name: a rule can count clips (one clip moves TUNE UF1 by ~0.04)
        wrong = [i for i, p, y in zip(idx, mean, labels) if p.argmax() != y]
        out[k] = {**scores(labels, mean), "wrong": [samples.names[i] for i in wrong],
                  **{f"wrong_{part}": [samples.names[i] for i in wrong if samples.subjects[i] in members]
                     for part, members in (("tune", TUNE), ("eval", EVAL))}}
    return out


def subject_intervals(by_seed: dict[int, dict], comp, live, subjects: list[str]) -> dict:
    """Each setting's 95% interval of its mean-of-seeds UF1 and UAR when the subjects are drawn again
    (trainer/metrics.py subject_interval): how far the figure would move with other subjects like these."""
    from trainer.metrics import subject_interval

    out = {}
    for k in next(iter(by_seed.values()))["probs"]:
        samples, idx = tested_samples(k, comp, live, subjects)
        predictions = np.stack([np.asarray(r["probs"][k]).argmax(axis=1) for r in by_seed.values()])
        out[k] = subject_interval(samples.labels[idx], predictions, np.asarray(samples.subjects)[idx], 3)
    return out


def summarise(by_seed: dict[int, dict]) -> dict:
    summary = {}
    first = next(iter(by_seed.values()))
    for key in [k for k in first if k not in ("per_subject", "matched_clips", "probs")]:
        entry = {}
        for metric in ("uf1", "uar"):
            values = np.array([r[key][metric] for r in by_seed.values()])
            entry[metric] = {"mean": float(values.mean()), "std": float(values.std()),
                             "per_seed": [round(float(v), 4) for v in values]}
        entry["n"] = next(iter(by_seed.values()))[key]["n"]
        summary[key] = entry
    return summary


def markdown(summary: dict, by_seed: dict[int, dict], subjects: list[str], command: str, seconds: float,
             intervals: dict | None = None) -> str:
    def cell(k, m):
        return f"{summary[k][m]['mean']:.4f} ± {summary[k][m]['std']:.4f}"

    def spread(k):
        return f"{intervals[k]['uf1'][0]:.3f}-{intervals[k]['uf1'][1]:.3f}" if intervals and k in intervals else "-"

    lines = [f"Command: `{command}` ({seconds:.0f} s wall)", "",
             f"Seeds {', '.join(map(str, by_seed))}; {len(subjects)} shared CASME II subjects, megc2019-3class.", "",
             "| setting | n | UF1 (mean ± std) | UAR (mean ± std) | UF1 per seed | UF1 95%, resampled subjects |",
             "|---|---|---|---|---|---|"]
    parts = {"matched": "matched clips only", "tune": "TUNE folds only", "eval": "EVAL folds only"}
    for k in summary:
        base, _, part = k.partition("_")
        label = f"{MEANING[base].split(':')[0]}, {parts[part]}" if part else MEANING[k]
        lines.append(f"| ({k}) {label} | {summary[k]['n']} | {cell(k, 'uf1')} | {cell(k, 'uar')} | "
                     f"{' / '.join(map(str, summary[k]['uf1']['per_seed']))} | {spread(k)} |")
    first = next(iter(by_seed.values()))["per_subject"]
    keys = [k[4:] for k in next(iter(first.values())) if k.startswith("acc_")]
    lines += ["", f"Per subject (clip counts; accuracy per seed, {' / '.join(map(str, by_seed))}):", "",
              "| subject | n composite | n live | " + " | ".join(f"acc ({k})" for k in keys) + " |",
              "|---|---|" + "---|" * (len(keys) + 1)]
    def fmt(v):
        return "-" if v is None else f"{v:.2f}"

    for subj, e in first.items():
        lines.append(f"| {subj} | {e['n_composite']} | {e['n_live']} | " + " | ".join(
            " / ".join(fmt(r["per_subject"][subj][f"acc_{k}"]) for r in by_seed.values()) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def shipped_scores(comp, live, subjects: list[str], framed=None) -> dict:
    """The shipped artifact's own weights on both forms of the shared subjects' clips. Not LOSO: it was
    fitted on every composite sample, these subjects included, so only the gap between the forms means much."""
    from engines import default_artifact_path, open_engine

    out = {}
    with open_engine(default_artifact_path(), threads=1) as engine:
        forms = (("composite form", comp), ("live form", live), ("live form, re-cut crops", framed))
        for key, samples in [(k, v) for k, v in forms if v is not None]:
            idx = np.flatnonzero(np.isin(samples.subjects, subjects))
            logits = np.stack([np.asarray(engine.infer({"flow": samples.flow[i][None]})["logits"]).reshape(-1)
                               for i in idx])
            out[key] = scores(samples.labels[idx], logits)
    return out


def framed_samples(live, prep_dir: Path):
    """The live samples with their flow remade from the prepared aligned crops re-cut to the composite's
    framing: what the classify stage computes for an artifact whose metadata names COMPOSITE_WINDOW."""
    from edge.perception.composite_framing import COMPOSITE_WINDOW
    from trainer.prep import reframed_flow

    return replace(live, flow=reframed_flow(prep_dir, list(live.subjects), list(live.names), COMPOSITE_WINDOW))


def jittered_windows(subject: str, name: str, seed: int, count: int = K_WINDOWS, spread: float = K_SPREAD):
    """`count` windows around COMPOSITE_WINDOW, each edge moved uniformly within ±spread of the crop side;
    fixed by (seed, clip), whatever the clip's position in the set."""
    from edge.perception.composite_framing import COMPOSITE_WINDOW

    rng = np.random.default_rng([seed, zlib.crc32(f"{subject}/{name}".encode())])
    return [tuple(float(v) for v in np.add(COMPOSITE_WINDOW, rng.uniform(-spread, spread, 4))) for _ in range(count)]


def jittered_samples(live, prep_dir: Path, seed: int) -> list:
    """K_WINDOWS copies of the live samples, each clip's flow remade from its crops re-cut to its jittered
    windows (the re-cut's code path, trainer.prep.reframed_flow, one window per clip)."""
    from trainer.prep import reframed_flow

    windows = [jittered_windows(s, n, seed) for s, n in zip(live.subjects, live.names)]
    return [replace(live, flow=np.concatenate([reframed_flow(prep_dir, [s], [n], w[i])
                                               for s, n, w in zip(live.subjects, live.names, windows)]))
            for i in range(K_WINDOWS)]


def triangle_flow_input(onset_crop: np.ndarray, apex_crop: np.ndarray) -> np.ndarray:
    """(n): flow_input with u, v and strain shrunk to 28x28 by the triangle filter of `prep --form megc2019`
    (MATLAB's imresize 'bilinear', the composite's resampling) instead of an area average."""
    from edge.perception.flow import TVL1Params, optical_strain, quantise_minmax, to_grey_float, tvl1_flow
    from trainer.megc2019_form import shrink

    flow = tvl1_flow(to_grey_float(onset_crop, "onset"), to_grey_float(apex_crop, "apex"), TVL1Params())
    channels = (flow[..., 0], flow[..., 1], optical_strain(flow))
    return np.stack([quantise_minmax(shrink(c).astype(np.float32)) for c in channels]).astype(np.float32)


def apex_in_onset_alignment(apex_crop: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """(o): the apex crop re-cut as the onset's transform would have cut it (transforms: the prepared (2, 2, 3)
    source -> crop alignments of onset and apex). The tracker re-aligned between the two frames on 16 of the
    113 clips, which puts a whole-crop shift of 1-5.5 px into their flow."""
    import cv2

    onset_t, apex_t = (np.vstack([t, [0.0, 0.0, 1.0]]) for t in transforms)
    if np.array_equal(onset_t, apex_t):
        return apex_crop
    to_onset = (onset_t @ np.linalg.inv(apex_t))[:2]
    return cv2.warpAffine(apex_crop, to_onset, apex_crop.shape[::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def remade_samples(live, prep_dir: Path, setting: str):
    """(uncut, re-cut) copies of the live samples with their flow remade from the prepared crops the `setting`
    way (REMADE): a measurement of the input form, not the product's form."""
    from edge.perception.composite_framing import COMPOSITE_WINDOW, reframe
    from edge.perception.flow import flow_input

    make = triangle_flow_input if setting == "n" else flow_input
    uncut, recut = [], []
    for subject, name in zip(live.subjects, live.names):
        with np.load(prep_dir / subject / f"{name}.npz") as d:
            onset, apex = d["onset_crop"], d["apex_crop"]
            if setting == "o":
                apex = apex_in_onset_alignment(apex, d["transforms"])
        uncut.append(make(onset, apex))
        recut.append(make(reframe(onset, COMPOSITE_WINDOW), reframe(apex, COMPOSITE_WINDOW)))
    return replace(live, flow=np.stack(uncut)), replace(live, flow=np.stack(recut))


def near_apex_samples(live, prep_dir: Path) -> tuple:
    """(before, after) copies of the live samples whose flow runs from the onset to the prepared clip frame
    (trainer/prep.py `clip`, spread from onset to offset) nearest the apex on that side, strictly between onset
    and offset (the apex where none is), re-cut as the classify stage cuts: the onset against a frame ~20-25 ms
    from the coder's apex, as a spotter's apex may be."""
    import cv2

    from edge.perception.composite_framing import COMPOSITE_WINDOW, composite_flow_input
    from trainer.prep import PrepParams, sample_frames

    params = PrepParams()
    before, after = [], []
    for subject, name in zip(live.subjects, live.names):
        with np.load(prep_dir / subject / f"{name}.npz") as d:
            onset, apex, offset = (int(v) for v in d["frames"])
            numbers = sample_frames(onset, offset, len(d["clip"]))
            grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in d["clip"]]
            sides = ([i for i, n in enumerate(numbers) if onset < n < apex][-1:],
                     [i for i, n in enumerate(numbers) if apex < n < offset][:1])
            for out, side in zip((before, after), sides):
                target = grey[side[0]] if side else d["apex_crop"]
                out.append(composite_flow_input(d["onset_crop"], target, params.flow, 28, COMPOSITE_WINDOW))
    return replace(live, flow=np.stack(before).astype(np.float32)), replace(live, flow=np.stack(after).astype(np.float32))


def video_samples(live, work: Path, protocol: str, fps: float, spotted: bool, spot_options: dict | None = None):
    """The live samples with their flow cut, as the classify stage cuts it (re-cut), from the aligned crops of each
    clip's test video that benchmarks/spotting_real.py tracked under WORK/cache (protocol, fps, seed 0): at the
    onset crop's frame (header flow_onset) and the apex of the live spot stage's event (default SpotParams) that
    overlaps the truth most, or, when
    `spotted` is False or no event overlaps, at the sheet's. `spot_options`: SpotParams fields other than the
    defaults. Returns (samples, names of the clips on the sheet's)."""
    from spotting_compare import replay_messages

    from edge.perception.composite_framing import COMPOSITE_WINDOW, composite_flow_input
    from edge.spotting import make_spotter
    from edge.spotting.metrics import Interval, intervals_of, iou
    from edge.spotting.params import SpotParams
    from trainer.prep import PrepParams
    from trainer.spotting.features import load_tracked

    params, flows, on_sheet = PrepParams(), [], []
    for subject, name in zip(live.subjects, live.names):
        stem = name if name.startswith(f"{subject}_") else f"{subject}_{name}"
        path = work / "cache" / f"{stem}_{protocol}_{fps:g}_0.npz"
        if not path.is_file():
            raise SystemExit(f"--spot-work: {path} does not exist; run benchmarks/spotting_real.py --work {work} "
                             f"--protocol {protocol} --fps {fps:g} for both sets first")
        video, extra = load_tracked(path, stem)
        onset, offset, apex = (int(v) for v in extra["truth"])
        if spotted:
            out, _ = replay_messages(make_spotter(SpotParams(**(spot_options or {}))), video.face_messages())
            # the frame the onset crop comes from (header flow_onset), by the interval's onset, offset and apex
            flow_onset = {(m.header["onset"]["seq"], m.header["offset"]["seq"], m.header["apex"]["seq"]):
                          m.header.get("flow_onset", m.header["onset"])["seq"] for m in out if m.topic == "interval"}
            truth = Interval(onset, offset, "micro", apex)
            overlap = [(iou(e, truth), e) for e in intervals_of(out) if e.apex is not None]
            best = max(overlap, key=lambda pair: pair[0], default=(0.0, None))
            if best[0] > 0:
                e = best[1]
                onset, apex = flow_onset.get((e.onset, e.offset, e.apex), e.onset), e.apex
            else:
                on_sheet.append(name)
        flows.append(composite_flow_input(video.crops[onset], video.crops[apex], params.flow, 28, COMPOSITE_WINDOW))
    return replace(live, flow=np.stack(flows).astype(np.float32)), on_sheet


def parse_spot_options(pairs: list[str]) -> dict:
    """["apex_frac=0.95", "method=learned", ...] -> {"apex_frac": 0.95, "method": "learned"}; each field must be one
    of SpotParams'."""
    from dataclasses import fields

    from edge.spotting.params import SpotParams

    known = {f.name: f.type for f in fields(SpotParams)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise SystemExit(f"--spot-option {pair!r}: expected FIELD=VALUE with FIELD one of SpotParams' fields, "
                             "e.g. apex_frac=0.95")
        try:
            out[key] = value if known[key] in ("str", str) else int(value) if known[key] in ("int", int) else float(value)
        except ValueError:
            raise SystemExit(f"--spot-option {pair!r}: {value!r} is not a number; expected e.g. apex_frac=0.95") from None
    from engines.errors import MestreamError

    try:
        SpotParams(**out)  # its own range checks
    except MestreamError as e:
        raise SystemExit(f"--spot-option: {e}") from None
    return out


def load(assets: Path, prep_dir: Path, workers: int):
    from trainer.data.clips import load_training_samples
    from trainer.data.megc2019 import load_megc2019

    comp = load_megc2019(assets / COMPOSITE, assets / COMPOSITE_CSV)
    live = load_training_samples("casme2", assets / FRAMES, assets / SHEET, prep_dir, "megc2019-3class",
                                 ["version=2019-07-01"], workers=workers, progress=False)
    return comp, live


def ensemble_text(ensemble: dict) -> str:
    def wrong(e: dict) -> str:
        if "wrong" not in e:  # a run older than the field
            return ""
        return (f"; {len(e['wrong'])} wrong ({len(e['wrong_tune'])} TUNE, {len(e['wrong_eval'])} EVAL): "
                + ", ".join(e["wrong"]))

    return "\nEnsemble of the seeds' models (mean probability per test sample):\n\n" + "\n".join(
        f"- ({k}) UF1 {e['uf1']:.4f}, UAR {e['uar']:.4f} (n {e['n']}){wrong(e)}" for k, e in ensemble.items()) + "\n"


def rescore(out: Path, comp, live) -> int:
    """The subject intervals of an earlier run, from its stored probabilities; cross_form.md written again."""
    path = out / "cross_form.json"
    if not path.is_file():
        print(f"--rescore: {path} does not exist; expected OUT of an earlier run of this benchmark")
        return 2
    run = json.loads(path.read_text())
    by_seed = {int(seed): r for seed, r in run["seeds"].items()}
    if not all("probs" in r for r in by_seed.values()):
        print(f"--rescore: {path} holds no per-sample probabilities (a run older than this field); run it again")
        return 2
    run["intervals"] = subject_intervals(by_seed, comp, live, run["subjects"])
    run["ensemble"] = ensemble_scores(by_seed, comp, live, run["subjects"])
    path.write_text(json.dumps(run, indent=2))
    text = markdown(run["summary"], by_seed, run["subjects"], run["command"], run["seconds"], run["intervals"])
    text += ensemble_text(run["ensemble"])
    (out / "cross_form.md").write_text(text)
    for k, interval in run["intervals"].items():
        print(f"({k}) UF1 {run['summary'][k]['uf1']['mean']:.4f}, 95% over resampled subjects "
              f"{interval['uf1'][0]:.4f}-{interval['uf1'][1]:.4f}; UAR {interval['uar'][0]:.4f}-{interval['uar'][1]:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="ststnorm")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS),
                        choices=sorted(k for k in MEANING if k not in J_TESTS + tuple(NEAR.values()) and k.count("-") == 0),
                        help=f"(j) also scores {J_TESTS}; (q) also scores {tuple(NEAR.values())}")
    parser.add_argument("--shipped", action="store_true",
                        help="only score the shipped artifact's weights on both forms (OUT/shipped.json)")
    parser.add_argument("--prep-dir", type=Path, default=None, help="default: OUT's parent/.mestream-prep/casme2")
    parser.add_argument("--spot-work", type=Path, default=None,
                        help="benchmarks/spotting_real.py's --work: also test (j), (q), (s) end to end on the clips' "
                             "tracked test videos (VIDEO_TESTS)")
    parser.add_argument("--spot-protocol", default="still", choices=("still", "drift", "far"),
                        help="which of spotting_real.py's test videos --spot-work tests on (default still)")
    parser.add_argument("--spot-option", action="append", default=[], metavar="FIELD=VALUE",
                        help="a SpotParams field for --spot-work's spotter, e.g. apex_frac=0.95, or method=learned "
                             "with artifact=engines/default/mestream-spotter.onnx (repeatable)")
    parser.add_argument("--models", type=Path, default=None,
                        help="save every fold model here, or load it where it is already there: test other inputs "
                             "without training again (use a new folder when the recipe or the inputs change)")
    parser.add_argument("--rescore", action="store_true",
                        help="train nothing: add the subject intervals and the ensemble's wrong clips to "
                             "OUT/cross_form.json of an earlier run and write its OUT/cross_form.md again")
    args = parser.parse_args(argv)
    from trainer.models.registry import get_family
    from trainer.train import prepare_inputs

    start = time.perf_counter()
    prep_dir = args.prep_dir or args.out.parent / ".mestream-prep" / "casme2"
    comp, live = load(args.assets, prep_dir, args.workers)
    if args.rescore:
        return rescore(args.out, comp, live)
    family = get_family(args.model)
    comp_x, live_x = prepare_inputs(family, comp), prepare_inputs(family, live)
    framed = framed_samples(live, prep_dir) if set(FRAMED) & set(args.settings) or args.shipped else None
    framed_x = prepare_inputs(family, framed) if framed is not None else None
    composite_casme2 = {s for s, d in zip(comp.subjects, comp.datasets) if d == "casme2"}
    subjects = [s for s in dict.fromkeys(live.subjects) if s in composite_casme2]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.shipped:
        result = shipped_scores(comp, live, subjects, framed)
        (args.out / "shipped.json").write_text(json.dumps(result, indent=2))
        for key, s in result.items():
            print(f"shipped artifact, {key}: UF1 {s['uf1']:.4f} UAR {s['uar']:.4f} (n={s['n']})")
        return 0
    settings = tuple(args.settings) + (J_TESTS if "j" in args.settings else ())
    if "q" in settings:
        settings += tuple(NEAR[k] for k in ("j", "q") if k in settings)
    near_x = tuple(prepare_inputs(family, x) for x in near_apex_samples(live, prep_dir)) if "q" in settings else ()
    video_x, spot_options = {}, parse_spot_options(args.spot_option)
    if "s" in settings and args.spot_work is None:
        raise SystemExit("--settings s trains on the spotter's frames of the clips' test videos: give --spot-work WORK "
                         "(benchmarks/spotting_real.py's --work)")
    if args.spot_work is not None and set(VIDEO_TESTED) & set(settings):
        for t, (fps, spotted) in VIDEO_TESTS.items():
            samples, on_sheet = video_samples(live, args.spot_work, args.spot_protocol, fps, spotted, spot_options)
            video_x[t] = prepare_inputs(family, samples)
            print(f"({t}) {len(live)} clips at the sheet's onset and apex" if not spotted else
                  f"({t}) {len(live) - len(on_sheet)} of {len(live)} clips at the spotter's onset crop and apex"
                  + (f"; at the sheet's (no event overlaps the truth): {', '.join(on_sheet)}" if on_sheet else ""))
        settings += tuple(f"{k}-{t}" for k in VIDEO_TESTED if k in settings for t in VIDEO_TESTS)
    remade_x = {k: tuple(prepare_inputs(family, x) for x in remade_samples(live, prep_dir, k))
                for k in REMADE if k in settings}
    by_seed = {}
    for seed in args.seeds:
        jittered_x = tuple(prepare_inputs(family, j) for j in jittered_samples(live, prep_dir, seed)) \
            if "k" in settings else ()
        by_seed[seed] = run_seed(args.model, comp, comp_x, live, live_x, subjects, seed, args.workers,
                                 settings, framed_x, jittered_x, remade_x, near_x, video_x, args.models)
        print(f"seed {seed}: " + ", ".join(f"({k}) UF1 {by_seed[seed][k]['uf1']:.4f} / TUNE "
                                           f"{by_seed[seed][f'{k}_tune']['uf1']:.4f} / EVAL "
                                           f"{by_seed[seed][f'{k}_eval']['uf1']:.4f}" for k in settings),
              f"[{time.perf_counter() - start:.0f} s]", flush=True)
        summary = summarise(by_seed)  # written after every seed: a cut-short run keeps what it finished
        ensemble = ensemble_scores(by_seed, comp, live, subjects)
        intervals = subject_intervals(by_seed, comp, live, subjects)
        command = "python benchmarks/cross_form_loso.py " + " ".join(sys.argv[1:] if argv is None else argv)
        seconds = time.perf_counter() - start
        (args.out / "cross_form.json").write_text(json.dumps(
            {"command": command, "model": args.model, "subjects": subjects, "meaning": MEANING,
             "summary": summary, "ensemble": ensemble, "intervals": intervals, "seeds": by_seed,
             "seconds": round(seconds, 1)}, indent=2))
        text = markdown(summary, by_seed, subjects, command, seconds, intervals)
        text += ensemble_text(ensemble)
        (args.out / "cross_form.md").write_text(text)
    print((args.out / "cross_form.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
