"""The training loop and the LOSO fold runner, readable top to bottom.

    prepare_inputs(family, samples)   -> {input name: float32 (N, *shape)}
    train_model(...)                  -> a trained torch module plus its per-epoch training curve
    run_loso(...)                     -> pooled test logits of every fold, each fold trained from scratch

Clean protocol: each fold builds a fresh model and optimiser from a seed derived from (seed, fold), trains for
the family's fixed `Recipe.epochs` on the training subjects only, and predicts the held-out subject once, after
the last epoch. Nothing is chosen by looking at the held-out subject. Class imbalance (250/109/83) is handled
by class-balanced sampling of the training subjects' samples, the same for every family.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import MestreamError
from engines.optional import require
from trainer.data.samples import Samples
from trainer.loso import Fold, loso_folds
from trainer.models.base import Family, Recipe

log = logging.getLogger(__name__)

# One intra-op thread: these models are tiny, so a second thread buys nothing on an idle 2-core CPU and
# costs 3x on a busy one (spinning threads); a fixed count also keeps float reductions reproducible.
NUM_THREADS = 1


def prepare_inputs(family: Family, samples: Samples) -> dict[str, np.ndarray]:
    """The family's input tensors for every sample: `family.prepare` when set, else flow / resized apex."""
    if family.prepare is not None:
        arrays = family.prepare(samples)
    else:
        arrays = {}
        for spec in family.inputs:
            if spec.name == "flow":
                arrays["flow"] = samples.flow.astype(np.float32)
            elif spec.name == "apex":
                arrays["apex"] = resize_apex(samples.apex, spec.shape)
            else:
                raise MestreamError(f"family {family.name!r} needs input {spec.name!r}, which the default "
                                    "preparation cannot make; give the family a prepare(samples) function")
    for spec in family.inputs:
        got = arrays.get(spec.name)
        if got is None or tuple(got.shape[1:]) != tuple(spec.shape) or len(got) != len(samples):
            shape = None if got is None else tuple(got.shape)
            raise MestreamError(f"input {spec.name!r} of family {family.name!r} has shape {shape}; expected "
                                f"({len(samples)}, {', '.join(map(str, spec.shape))}); fix the family's prepare()")
    return {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}


def resize_apex(apex: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB -> float32 (N, C, S, S) in [0, 1]; C = 1 averages the channels to grey."""
    import cv2

    channels, height, width = shape
    out = np.empty((len(apex), channels, height, width), dtype=np.float32)
    for i, image in enumerate(apex):
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out[i] = small.mean(axis=2, keepdims=True).transpose(2, 0, 1) if channels == 1 else small.transpose(2, 0, 1)
    return out


def augment(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random horizontal mirror of a batch, the same for every input of a sample.

    Mirroring a face mirrors its motion: the horizontal flow u changes sign. The released u is min-max
    normalised per image, so -u normalises to exactly 1 - u.
    """
    flip = rng.random(len(next(iter(arrays.values())))) < 0.5
    out = {}
    for name, a in arrays.items():
        a = a.copy()
        if a.ndim >= 4:
            a[flip] = a[flip][..., ::-1]
            if name == "flow":
                a[flip, 0] = 1.0 - a[flip, 0]
        out[name] = a
    return out


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices drawn with probability inversely proportional to class frequency."""
    counts = np.bincount(labels, minlength=int(labels.max()) + 1).astype(np.float64)
    weight = 1.0 / counts[labels]
    return rng.choice(len(labels), size=len(labels), replace=True, p=weight / weight.sum())


@dataclass
class Trained:
    model: Any
    loss: list[float] = field(default_factory=list)  # mean training loss per epoch
    acc: list[float] = field(default_factory=list)  # training-batch accuracy per epoch


def _seed_everything(seed: int) -> None:
    torch = require("torch", "train")
    torch.manual_seed(seed)
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _batch(arrays: dict[str, np.ndarray], index: np.ndarray, au_text: list[str] | None, rng=None,
           device: str = "cpu") -> dict:
    torch = require("torch", "train")
    picked = {name: a[index] for name, a in arrays.items()}
    if rng is not None:
        picked = augment(picked, rng)
    batch = {name: torch.from_numpy(np.ascontiguousarray(a)).to(device) for name, a in picked.items()}
    if au_text is not None:
        batch["au_text"] = [au_text[i] for i in index]
    return batch


def train_model(
    family: Family,
    arrays: dict[str, np.ndarray],
    labels: np.ndarray,
    au_text: list[str] | None,
    recipe: Recipe,
    seed: int,
    num_classes: int,
    initial_state: dict | None = None,
    device: str = "cpu",
) -> Trained:
    """Train a fresh model of `family` on all the given samples for exactly `recipe.epochs` epochs."""
    torch = require("torch", "train")
    _seed_everything(seed)
    rng = np.random.default_rng(seed)
    model = family.build(num_classes)
    if initial_state is not None:
        model.load_state_dict(initial_state, strict=False)
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(labels) / recipe.batch_size)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.1
    )
    labels_t = torch.from_numpy(labels.astype(np.int64)).to(device)
    trained = Trained(model=model)
    for _epoch in range(recipe.epochs):
        model.train()
        order = balanced_order(labels, rng)
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            if len(index) < 2:  # batch norm cannot train on a single sample
                continue
            batch = _batch(arrays, index, au_text, rng, device)
            loss, logits = model.training_loss(batch, labels_t[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(index)
            correct += int((logits.detach().argmax(dim=1) == labels_t[index]).sum())
        trained.loss.append(total_loss / len(order))
        trained.acc.append(correct / len(order))
        if not np.isfinite(trained.loss[-1]):
            raise MestreamError(f"training loss of {family.name!r} became {trained.loss[-1]} (seed {seed}); "
                                "lower the learning rate in its Recipe")
    return trained


def predict(model, arrays: dict[str, np.ndarray], names: list[str], batch_size: int = 256,
            device: str = "cpu") -> np.ndarray:
    """Logits (N, C) in eval mode, inputs passed to forward() in the family's input order."""
    torch = require("torch", "train")
    model.eval()
    count = len(next(iter(arrays.values())))
    out = []
    with torch.no_grad():
        for start in range(0, count, batch_size):
            index = np.arange(start, min(count, start + batch_size))
            out.append(model(*[torch.from_numpy(arrays[n][index]).to(device) for n in names]).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


@dataclass
class LosoResult:
    logits: np.ndarray  # (N, C) test logits, each from the fold that held its subject out
    fold_of: np.ndarray  # (N,) index of the fold that predicted each sample
    folds: list[Fold]
    curves: dict[str, list[float]]  # mean over folds per epoch: "loss", "acc" (training subjects only)
    seconds: float
    pretrain_seconds: float


def fold_seed(seed: int, fold_index: int) -> int:
    return seed * 1000 + fold_index


def run_pretrain(family: Family, seed: int, work_dir: Path, assets: Path | None) -> dict | None:
    """Call `family.pretrain` once, passing only the keyword arguments its signature names."""
    if family.pretrain is None:
        return None
    offered = {"seed": seed, "work_dir": work_dir, "out_dir": work_dir, "assets": assets}
    params = inspect.signature(family.pretrain).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = offered
    else:
        kwargs = {k: v for k, v in offered.items() if k in params}
    return family.pretrain(**kwargs)


def _train_fold(job: tuple) -> tuple[np.ndarray, list[float], list[float]]:
    """One fold, self-contained so that it can run in a worker process: (test logits, loss curve, acc curve)."""
    family_name, arrays, labels, au_text, fold, recipe, seed, num_classes, initial_state, device = job
    from trainer.models.registry import get_family

    family = get_family(family_name)
    names = [spec.name for spec in family.inputs]
    train_text = [au_text[i] for i in fold.train] if au_text else None
    trained = train_model(family, {n: a[fold.train] for n, a in arrays.items()}, labels[fold.train], train_text,
                          recipe, seed, num_classes, initial_state, device)
    logits = predict(trained.model, {n: a[fold.test] for n, a in arrays.items()}, names, device=device)
    return logits, trained.loss, trained.acc


def run_loso(
    family: Family,
    samples: Samples,
    seed: int,
    recipe: Recipe | None = None,
    fold_limit: int | None = None,
    work_dir: Path | None = None,
    assets: Path | None = None,
    progress: Callable[[Fold], None] | None = None,
    workers: int = 1,
    device: str = "cpu",
) -> LosoResult:
    """Leave-one-subject-out: every fold trained from scratch on the other subjects, tested once at the end.

    Folds are independent and seeded by (seed, fold index), so `workers` > 1 runs them in parallel processes
    and gives the same numbers as one process.
    """
    recipe = recipe or family.recipe
    start = time.perf_counter()
    initial_state = run_pretrain(family, seed, work_dir or Path("."), assets)
    pretrain_seconds = time.perf_counter() - start
    arrays = prepare_inputs(family, samples)
    au_text = samples.au_text if any(samples.au_text) else None
    folds = loso_folds(samples.subjects, fold_limit)
    jobs = [(family.name, arrays, samples.labels, au_text, fold, recipe, fold_seed(seed, k), len(samples.classes),
             initial_state, device) for k, fold in enumerate(folds)]
    logits = np.full((len(samples), len(samples.classes)), np.nan, dtype=np.float32)
    fold_of = np.full(len(samples), -1, dtype=np.int64)
    losses, accs = [None] * len(folds), [None] * len(folds)  # kept in fold order, whatever finishes first

    def collect(k: int, result: tuple) -> None:
        logits[folds[k].test] = result[0]
        fold_of[folds[k].test] = k
        losses[k], accs[k] = result[1], result[2]
        if progress is not None:
            progress(folds[k])

    if workers <= 1:
        for k, job in enumerate(jobs):
            collect(k, _train_fold(job))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a forked child would inherit torch's thread pool state from the parent
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = {pool.submit(_train_fold, job): k for k, job in enumerate(jobs)}
            for future in as_completed(pending):
                collect(pending[future], future.result())
    curves = {"loss": np.mean(losses, axis=0).tolist(), "acc": np.mean(accs, axis=0).tolist()}
    return LosoResult(logits, fold_of, folds, curves, time.perf_counter() - start, pretrain_seconds)


def fit_all(family: Family, samples: Samples, seed: int, recipe: Recipe | None = None,
            initial_state: dict | None = None, device: str = "cpu") -> Trained:
    """One model on every sample with the same fixed recipe: the model that ships (returned on the CPU)."""
    recipe = recipe or family.recipe
    arrays = prepare_inputs(family, samples)
    au_text = samples.au_text if any(samples.au_text) else None
    trained = train_model(family, arrays, samples.labels, au_text, recipe, fold_seed(seed, 999),
                          len(samples.classes), initial_state, device)
    trained.model.to("cpu")
    return trained


def with_epochs(recipe: Recipe, epochs: int | None) -> Recipe:
    if epochs is None:
        return recipe
    if epochs < 1:
        raise MestreamError(f"--epochs {epochs} is not a positive count; pass an integer >= 1")
    return replace(recipe, epochs=epochs)
