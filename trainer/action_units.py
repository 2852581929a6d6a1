"""Action units from the onset->apex flow: a multi-label model, its LOSO evaluation and its artifact.

    aus = modelled_aus([clip.action_units for clip in clips])        # ["AU1", "AU4", ...] (FACS numbers)
    targets = au_targets([clip.action_units for clip in clips], aus)  # float32 (N, K), 1 = coded in the clip
    result = run_au_loso(flow, targets, subjects, aus)                # pooled out-of-fold probabilities
    scores = au_scores(targets, result.active, result.probs, aus)

The model reads the classifier's input (28x28 u, v, strain), so the live pipeline computes the flow once for
both: each map standardised as in ststnorm (minus its mean, over its spread), average-pooled to a coarse grid
(the aligned crop puts brows, eyes and mouth at fixed places), one logistic unit per AU, fitted on the clips
and their mirror images and averaged over both views at prediction. Sides are merged (L12, R12 -> AU12), so
a mirrored face shows the same AUs. With 185 clips and 13-87 positives per AU a linear read-out of where the
face moved is what the data can support; the fit is convex (L-BFGS from zero weights), so it is
deterministic and has no epoch to choose.

Evaluation protocol (`run_au_loso`): one fold per subject. A fold chooses the pooling, the L2 penalty and
every AU's decision threshold on its TRAINING subjects only: an inner split of those into `INNER_SPLITS`
subject groups gives out-of-fold probabilities, the candidate with the best mean per-AU F1 wins and each AU
gets the threshold that maximises its F1 there. The fold then fits on all its training subjects and predicts
the held-out subject once. The shipped model (`fit_au_model`) is chosen and fitted the same way on every
clip. AU F1 is computed from TP/FP/FN pooled over the folds; AUC from the pooled probabilities.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import MestreamError
from engines.optional import require

TASK = "action_units"  # the artifact's task: independent sigmoid probabilities, one per AU
MODEL_MIN_POSITIVES = 10  # an AU is modelled when at least this many training clips have it
REPORT_MIN_POSITIVES = 15  # ... and reported under the target when at least this many
INNER_SPLITS = 3  # subject groups of the inner split that chooses thresholds on training subjects
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))


@dataclass(frozen=True)
class AURecipe:
    """Fixed before any evaluation. Candidates that each fold chooses among on its training subjects only."""

    pools: tuple[int, ...] = (2, 4)  # average pooling of the standardised 28x28 maps: a 14x14 or a 7x7 grid
    l2: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)  # penalty on the weights (the features are standardised)
    iterations: int = 200  # L-BFGS steps of the full-batch fit (convex: the fit converges, no epoch to choose)
    # positives of a rare AU are up-weighted by sqrt(negatives / positives), at most `max_pos_weight`:
    # full balancing would make every rare AU fire on most clips
    max_pos_weight: float = 5.0


AU_RECIPE = AURecipe()


# ---- labels ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+")


def au_numbers(codes: tuple[str, ...] | list[str]) -> set[int]:
    """FACS numbers coded in a clip, sides merged: ("AU4", "R12", "L2/R2") -> {4, 12, 2}.

    An alternative between different AUs ("R6/R12": the coder was unsure which) counts as neither.
    """
    found: set[int] = set()
    for code in codes:
        numbers = {int(n) for n in _NUMBER.findall(str(code))}
        if len(numbers) == 1:
            found |= numbers
    return found


def au_name(number: int) -> str:
    return f"AU{number}"


def au_number_of(name: str) -> int:
    match = re.fullmatch(r"AU(\d{1,2})", name)
    if not match:
        raise MestreamError(f"action unit {name!r} is not a FACS code; expected AU<number>, e.g. AU4")
    return int(match.group(1))


def positive_counts(clip_codes: list) -> dict[str, int]:
    """AU name -> number of clips coded with it, in FACS order."""
    counts: dict[int, int] = {}
    for codes in clip_codes:
        for number in au_numbers(codes):
            counts[number] = counts.get(number, 0) + 1
    return {au_name(n): counts[n] for n in sorted(counts)}


def modelled_aus(clip_codes: list, min_positives: int = MODEL_MIN_POSITIVES) -> list[str]:
    """The AUs with at least `min_positives` clips, in FACS order (a count of labels, not of results)."""
    aus = [name for name, count in positive_counts(clip_codes).items() if count >= min_positives]
    if not aus:
        raise MestreamError(f"no action unit is coded in {min_positives} or more of the {len(clip_codes)} clips; "
                            "pass more clips or a lower minimum")
    return aus


def au_targets(clip_codes: list, aus: list[str]) -> np.ndarray:
    """float32 (N, K): 1 where clip n is coded with AU k."""
    column = {au_number_of(name): k for k, name in enumerate(aus)}
    targets = np.zeros((len(clip_codes), len(aus)), np.float32)
    for n, codes in enumerate(clip_codes):
        for number in au_numbers(codes):
            if number in column:
                targets[n, column[number]] = 1.0
    return targets


# ---- metrics -----------------------------------------------------------------------------------------


def binary_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan without both positives and negatives."""
    targets = np.asarray(targets) > 0.5
    scores = np.asarray(scores, np.float64)
    positives, negatives = int(targets.sum()), int((~targets).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        stop = start
        while stop + 1 < len(scores) and sorted_scores[stop + 1] == sorted_scores[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return float((ranks[targets].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_f1(targets: np.ndarray, active: np.ndarray) -> float:
    targets, active = np.asarray(targets) > 0.5, np.asarray(active, bool)
    tp = int((targets & active).sum())
    denominator = int(targets.sum()) + int(active.sum())
    return 2 * tp / denominator if denominator else 0.0


def au_scores(targets: np.ndarray, active: np.ndarray, probs: np.ndarray, aus: list[str]) -> dict[str, dict]:
    """Per AU: positives, predicted, tp, precision, recall, F1 (from the pooled counts) and AUC."""
    out = {}
    for k, name in enumerate(aus):
        t, a = targets[:, k] > 0.5, np.asarray(active[:, k], bool)
        tp, positives, predicted = int((t & a).sum()), int(t.sum()), int(a.sum())
        out[name] = {
            "positives": positives,
            "predicted": predicted,
            "tp": tp,
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / positives if positives else 0.0,
            "f1": binary_f1(t, a),
            "auc": binary_auc(t, probs[:, k]),
        }
    return out


def macro_f1(scores: dict[str, dict], aus: list[str]) -> float:
    return float(np.mean([scores[name]["f1"] for name in aus])) if aus else float("nan")


def best_thresholds(targets: np.ndarray, probs: np.ndarray, grid: tuple[float, ...] = THRESHOLD_GRID) -> np.ndarray:
    """Per AU, the grid threshold with the highest F1 on these (training) predictions; ties -> the higher one."""
    chosen = np.empty(targets.shape[1], np.float32)
    for k in range(targets.shape[1]):
        f1s = [binary_f1(targets[:, k], probs[:, k] >= t) for t in grid]
        best = max(f1s)
        chosen[k] = max(t for t, f in zip(grid, f1s) if f == best)
    return chosen


# ---- model -------------------------------------------------------------------------------------------


def build_au_net(num_aus: int, pool: int):
    """forward(flow (B, 3, 28, 28)) -> (B, K) probabilities: each u, v, strain map standardised (minus its mean,
    over its spread, as ststnorm), average-pooled to a (28 / pool)^2 grid, one logistic unit per AU, averaged
    over the flow and its exact mirror image (u -> 1 - u, columns reversed)."""
    torch = require("torch", "train")
    from torch import nn

    from trainer.models.ststens import centred, mirror_flow
    from trainer.models.ststnet import FLOW

    side = FLOW.shape[-1]
    if side % pool:
        raise MestreamError(f"AU pool {pool} does not divide the {side}x{side} flow; expected one of 1, 2, 4, 7, 14")

    class AULinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AvgPool2d(kernel_size=pool, stride=pool)
            self.head = nn.Linear(3 * (side // pool) ** 2, num_aus)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.register_buffer("reverse", torch.arange(side - 1, -1, -1), persistent=False)

        def features(self, flow):  # both views: (2B, F)
            views = torch.cat([flow, mirror_flow(flow, self.reverse)], dim=0)
            return self.pool(centred(views, "standard")).flatten(1)

        def forward(self, flow):
            probs = torch.sigmoid(self.head(self.features(flow)))
            return probs.reshape(2, flow.shape[0], -1).mean(dim=0)

    return AULinear()


def pos_weights(targets: np.ndarray, cap: float) -> np.ndarray:
    positives = targets.sum(axis=0)
    negatives = len(targets) - positives
    return np.clip(np.sqrt(negatives / np.maximum(positives, 1.0)), 1.0, cap).astype(np.float32)


@dataclass(frozen=True)
class AUConfig:
    pool: int
    l2: float


def candidate_configs(recipe: AURecipe = AU_RECIPE) -> list[AUConfig]:
    return [AUConfig(pool, l2) for pool in recipe.pools for l2 in recipe.l2]


def train_au_model(flow: np.ndarray, targets: np.ndarray, config: AUConfig, recipe: AURecipe = AU_RECIPE):
    """The AU model fitted on (flow, targets) and their mirror images: weighted logistic loss + L2, full batch
    L-BFGS from zero weights (deterministic: no seed, no epoch)."""
    torch = require("torch", "train")
    from torch.nn import functional as F

    from trainer.train import NUM_THREADS

    torch.set_num_threads(NUM_THREADS)
    model = build_au_net(targets.shape[1], config.pool)
    with torch.no_grad():
        x = model.features(torch.from_numpy(np.ascontiguousarray(flow, np.float32)))
    y = torch.from_numpy(np.concatenate([targets, targets]).astype(np.float32))  # a mirrored face, the same AUs
    weight = torch.from_numpy(pos_weights(targets, recipe.max_pos_weight))
    optimiser = torch.optim.LBFGS(model.head.parameters(), lr=1.0, max_iter=recipe.iterations,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model.head(x), y, pos_weight=weight)
        loss = loss + config.l2 * model.head.weight.pow(2).sum() / targets.shape[1]
        loss.backward()
        return loss

    loss = optimiser.step(closure)
    if not torch.isfinite(loss):
        raise MestreamError(f"AU fit loss became {float(loss)} ({config}); check the flow inputs for NaN")
    return model.eval()


def predict_au(model, flow: np.ndarray) -> np.ndarray:
    torch = require("torch", "train")
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(flow, np.float32))).numpy().astype(np.float32)


def subject_groups(subjects: list[str], splits: int) -> list[list[str]]:
    """The distinct subjects dealt round-robin, in sorted order, into `splits` groups (fixed, label-blind)."""
    unique = sorted(set(subjects))
    if len(unique) < 2:
        raise MestreamError(f"choosing the AU model on training subjects needs at least 2 of them, got {unique}")
    splits = min(splits, len(unique))
    return [unique[g::splits] for g in range(splits)]


@dataclass
class InnerChoice:
    config: AUConfig
    thresholds: np.ndarray  # (K,)
    inner_f1: float  # mean over AUs of the inner out-of-fold F1 at those thresholds


def choose_on_training(flow: np.ndarray, targets: np.ndarray, subjects: list[str],
                       recipe: AURecipe = AU_RECIPE) -> InnerChoice:
    """Pool, L2 and per-AU thresholds chosen on these (training) subjects only: out-of-fold probabilities over
    `INNER_SPLITS` subject groups, the candidate with the best mean per-AU F1, ties to the stronger penalty."""
    subjects_arr = np.asarray(subjects)
    groups = [np.isin(subjects_arr, group) for group in subject_groups(subjects, INNER_SPLITS)]
    best: InnerChoice | None = None
    for config in candidate_configs(recipe):
        probs = np.zeros_like(targets)
        for held in groups:
            probs[held] = predict_au(train_au_model(flow[~held], targets[~held], config, recipe), flow[held])
        thresholds = best_thresholds(targets, probs)
        f1 = float(np.mean([binary_f1(targets[:, k], probs[:, k] >= thresholds[k]) for k in range(targets.shape[1])]))
        if best is None or f1 > best.inner_f1 or (f1 == best.inner_f1 and config.l2 > best.config.l2):
            best = InnerChoice(config, thresholds, f1)
    return best


@dataclass
class AULoso:
    aus: list[str]
    probs: np.ndarray  # (N, K) out-of-fold probabilities
    thresholds: np.ndarray  # (N, K) the threshold each clip's fold chose on its training subjects
    fold_of: np.ndarray  # (N,) fold index
    fold_subjects: list[str]
    fold_choices: list[dict] = field(default_factory=list)  # per fold: pool, l2, thresholds, inner F1
    seconds: float = 0.0

    @property
    def active(self) -> np.ndarray:
        return self.probs >= self.thresholds


def _au_fold(job: tuple) -> tuple[np.ndarray, InnerChoice]:
    flow, targets, subjects, train, test, recipe = job
    choice = choose_on_training(flow[train], targets[train], [subjects[i] for i in train], recipe)
    model = train_au_model(flow[train], targets[train], choice.config, recipe)
    return predict_au(model, flow[test]), choice


def run_au_loso(flow: np.ndarray, targets: np.ndarray, subjects: list[str], aus: list[str],
                recipe: AURecipe = AU_RECIPE, workers: int = 1, fold_limit: int | None = None) -> AULoso:
    """Leave-one-subject-out over `subjects`: each fold chooses its pool, L2 and thresholds on its own training
    subjects, fits on all of them and predicts the held-out subject once (see the module docstring)."""
    import time

    from trainer.loso import loso_folds

    start = time.perf_counter()
    folds = loso_folds(subjects, fold_limit)
    jobs = [(flow, targets, list(subjects), fold.train, fold.test, recipe) for fold in folds]
    probs = np.full(targets.shape, np.nan, np.float32)
    thresholds = np.full(targets.shape, np.nan, np.float32)
    fold_of = np.full(len(targets), -1, np.int64)
    chosen: list[dict] = [{} for _ in folds]

    def collect(k: int, result: tuple[np.ndarray, InnerChoice]) -> None:
        test_probs, choice = result
        probs[folds[k].test] = test_probs
        thresholds[folds[k].test] = choice.thresholds
        fold_of[folds[k].test] = k
        chosen[k] = {"pool": choice.config.pool, "l2": choice.config.l2, "inner_f1": round(choice.inner_f1, 4),
                     "thresholds": {a: float(t) for a, t in zip(aus, choice.thresholds)}}

    if workers <= 1:
        for k, job in enumerate(jobs):
            collect(k, _au_fold(job))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = {pool.submit(_au_fold, job): k for k, job in enumerate(jobs)}
            for future in as_completed(pending):
                collect(pending[future], future.result())
    return AULoso(aus, probs, thresholds, fold_of, [f.subject for f in folds], chosen, time.perf_counter() - start)


@dataclass
class FittedAU:
    model: Any
    aus: list[str]
    choice: InnerChoice  # pool, L2 and thresholds chosen on the training subjects' inner out-of-fold probabilities


def fit_au_model(flow: np.ndarray, targets: np.ndarray, subjects: list[str], aus: list[str],
                 recipe: AURecipe = AU_RECIPE) -> FittedAU:
    """The model that ships: every clip, chosen and fitted exactly as inside a fold."""
    choice = choose_on_training(flow, targets, subjects, recipe)
    return FittedAU(train_au_model(flow, targets, choice.config, recipe), aus, choice)


# ---- export ------------------------------------------------------------------------------------------


def export_au_model(fitted: FittedAU, out: Path | str, *, training: dict[str, Any], scores: dict[str, Any],
                    selection: str, crop_window: tuple[float, float, float, float] | None = None, atol: float = 1e-4):
    """The AU model as a self-describing ONNX artifact: input "flow" exactly as the classifier's (same form
    and flow parameters), output "probs" (1, K) sigmoid probabilities, classes = the AU names, task
    "action_units" and the per-AU thresholds in the metadata. Checked like every export (ONNX checker,
    TensorRT operator list, ONNX Runtime against torch)."""
    import dataclasses
    import io
    import warnings

    import onnxruntime as ort

    from engines.artifact import Artifact, TensorInfo
    from engines.files import atomic_write, utc_stamp
    from engines.onnx_ops import check_trt_ops
    from trainer.export import OPSET, flow_description, graph_sha256, serialize_with_metadata, versions
    from trainer.models.ststnet import FLOW

    torch = require("torch", "train")
    onnx = require("onnx", "train")
    out = Path(out)
    # crop_window: the aligned crops re-cut before the flow, as the classifier it runs beside (classify_input.py)
    flow_block = flow_description()
    if crop_window is not None:  # declared as trainer.export.framed_for_composite declares the classifier's
        from edge.perception.composite_framing import FRAMED_FLOW_FORM

        flow_block = {**flow_block, "crop_window": list(crop_window), "form": FRAMED_FLOW_FORM}
    shape = (1, *FLOW.shape)
    model = fitted.model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(shape),), buffer, dynamo=False, opset_version=OPSET,
                              input_names=["flow"], output_names=["probs"], do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    check_trt_ops(proto, what="action-unit model")
    count = len(fitted.aus)
    artifact = Artifact(
        family="au-linear",
        model_id=graph_sha256(proto),
        inputs=(TensorInfo("flow", shape, "float32", FLOW.meaning, flow_block["form"]),),
        outputs=(TensorInfo("probs", (1, count), "float32", "independent sigmoid probability of each action unit"),),
        classes=tuple(fitted.aus),
        flow=flow_block,
        training=training,
        protocol="loso",
        scores=scores,
        selection=selection,
        versions=versions(),
        created=utc_stamp(),
        task=TASK,
        thresholds={name: round(float(t), 4) for name, t in zip(fitted.aus, fitted.choice.thresholds)},
    )
    data = serialize_with_metadata(proto, artifact)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for trial in range(3):
        feed = rng.random(shape, dtype=np.float32)
        with torch.no_grad():
            want = model(torch.from_numpy(feed)).numpy()
        got = session.run(["probs"], {"flow": feed})[0]
        err = float(np.max(np.abs(want - got)))
        if not err <= atol:
            raise MestreamError(f"export of the AU model: ONNX Runtime differs from torch by {err:.2e} (> {atol:.0e}) "
                                f"on random input {trial}; the graph is not exportable as is")
    atomic_write(out, data)
    return dataclasses.replace(artifact, path=out)


def recipe_text(recipe: AURecipe = AU_RECIPE) -> str:
    return (f"fixed recipe (trainer/action_units.py AURecipe, set before any evaluation): {asdict(recipe)}; "
            f"AUs with >= {MODEL_MIN_POSITIVES} positive clips modelled; each fold chooses pool and L2 (best mean "
            f"per-AU F1) and every AU's threshold (grid 0.05..0.95, best F1) on out-of-fold probabilities of an "
            f"inner {INNER_SPLITS}-group split of its own training subjects, then fits on all of them and predicts "
            "the held-out subject once; nothing is chosen by looking at a test subject")


AU_LICENCE_NOTE = (
    "Trained on CASME II clips, which are licensed for non-commercial research only, and so is this model: "
    "internal research use only, no redistribution outside the project, no commercial use. The frames are not "
    "part of this package."
)


def render_au_card(artifact, *, command: str, size_bytes: int) -> str:
    """AU_CARD.md for a shipped AU artifact, from its own metadata (nothing typed by hand can drift)."""
    import json

    training, scores = artifact.training or {}, artifact.scores or {}
    loso = scores.get("loso", {})
    flow = artifact.flow or {}
    lines = [
        "# mestream action-unit model",
        "",
        f"`{artifact.path.name if artifact.path else 'artifact.onnx'}`: family **{artifact.family}**, task "
        f"`{artifact.task}`, model id `{artifact.model_id}`, {size_bytes / 1024:.0f} KiB, created {artifact.created}.",
        "",
        "## What it does",
        "",
        f"Gives, for one spotted expression, the probability of each of {len(artifact.classes)} FACS action units: "
        + ", ".join(artifact.classes) + " (sides merged: L12 and R12 are AU12). Each is a probability on its own; "
        f"they do not sum to 1. Output `probs` (1, {len(artifact.classes)}). An AU is reported active at or above "
        "its threshold, which the artifact records: "
        + ", ".join(f"{c} {artifact.thresholds[c]:.2f}" for c in artifact.classes) + ".",
        "",
        "| input | shape | dtype | meaning | normalisation |",
        "|---|---|---|---|---|",
        *(f"| `{s.name}` | {list(s.shape)} | {s.dtype} | {s.meaning} | {s.normalisation} |" for s in artifact.inputs),
        "",
        f"Flow: `{flow.get('algorithm', '?')}` with parameters `{json.dumps(flow.get('params', {}), sort_keys=True)}`. "
        "When the classifier's artifact records the same flow block, the classify stage gives this model the "
        "classifier's flow (edge/stages/action_units.py): no second TV-L1. The model: each map standardised (minus "
        f"its mean, over its spread), average-pooled by {training.get('pool', '?')}, one logistic unit per AU "
        f"(L2 {training.get('l2', '?')}), averaged over the flow and its mirror image (trainer/action_units.py).",
        "",
        "## Data",
        "",
        f"{training.get('dataset', '?')}: {training.get('samples', '?')} clips of {training.get('subjects', '?')} "
        f"subjects, AU codes of the {training.get('sheet', '?')}. Positive clips: "
        + ", ".join(f"{c} {training.get('positives', {}).get(c, '?')}" for c in artifact.classes)
        + ". The shipped weights are fitted on every clip; pooling, L2 and thresholds were chosen by the recipe "
        "on an inner split of all subjects.",
        "",
        "## Evaluation",
        "",
        f"Protocol: `{artifact.protocol}` (leave-one-subject-out); F1 from counts pooled over the folds, AUC from "
        "the pooled probabilities. The scores are those of the same recipe under that protocol, not of the shipped "
        "weights (which saw every subject). `benchmarks/results/action_units.md` has the per-subject figures.",
        "",
        "| AU | positive clips | F1 | AUC | precision | recall |",
        "|---|---|---|---|---|---|",
        *(f"| {c} | {loso[c]['positives']} | {loso[c]['f1']:.3f} | {loso[c]['auc']:.3f} | {loso[c]['precision']:.3f} | "
          f"{loso[c]['recall']:.3f} |" for c in artifact.classes if c in loso),
        "",
        f"Macro F1 over the AUs with at least {REPORT_MIN_POSITIVES} positive clips "
        f"({', '.join(scores.get('macro_f1_aus', []))}): {scores.get('macro_f1', float('nan')):.4f}.",
        "",
        f"How it was chosen: {artifact.selection}.",
        "",
        "## Limitations",
        "",
        "- One dataset: 19 subjects, young adults, a 200 fps camera under studio light; not validated on other "
        "populations, cameras or lighting, and must not be used to judge people.",
        "- AUs with a low F1 above (a few dozen positives or fewer) are hints, not codes.",
        "",
        "## Licence",
        "",
        AU_LICENCE_NOTE,
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(artifact.versions.items()))}.",
        "",
    ]
    return "\n".join(lines)


def write_au_card(artifact_path: Path | str, out: Path | str, *, command: str) -> Path:
    """Render AU_CARD.md next to a shipped AU artifact (atomically)."""
    from engines.artifact import read_artifact
    from engines.files import atomic_write

    artifact_path = Path(artifact_path)
    text = render_au_card(read_artifact(artifact_path), command=command, size_bytes=artifact_path.stat().st_size)
    atomic_write(Path(out), text.encode())
    return Path(out)
