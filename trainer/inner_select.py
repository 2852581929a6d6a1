"""Choose recipe variants by validation on TRAINING subjects only, before any full LOSO is run.

    python -m trainer.inner_select --data DIR --labels CSV --family ststens \\
        --variant epochs=100 --variant epochs=50 --seeds 0 1 --workers 2 --out runs/inner.json

Protocol (fixed before any score is seen): from the LOSO folds, take the first fold of each dataset part
(`--outer-per-part` of them); drop that fold's held-out subject entirely; split the remaining training
subjects by subject into fit (2/3) and validation (1/3) with `trainer.loso.inner_split`; train each variant on
fit with the family's fixed recipe (the variant's overrides applied) and predict validation once, after the
last epoch. Validation predictions are pooled over the outer folds and UF1/UAR computed per seed, then
averaged over seeds. No held-out (test) subject of the chosen outer folds is ever seen.

Families whose model offers `mean_probability(flow, members=k, mirror=b)` (ststens) are also scored for every
member count k and with/without the mirror view from the same trained models: a member prefix of a jointly
trained ensemble is exactly a smaller ensemble, so one training scores every ensemble size.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engines.errors import MestreamError
from engines.files import atomic_write


def parse_variant(text: str) -> dict:
    """'epochs=50,lr=0.002,members=3' -> {'epochs': 50, 'lr': 0.002, 'members': 3} (build kwargs allowed)."""
    out = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise MestreamError(f"--variant item {item!r} is not KEY=VALUE; write e.g. epochs=50,lr=0.002")
        key, value = item.split("=", 1)
        out[key.strip()] = json.loads(value) if value.strip()[:1] in "0123456789-[{tf" else value.strip()
    return out


def validation_splits(subjects: list[str], datasets: list[str], outer_per_part: int, seed: int,
                      fraction: float = 1 / 3) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(held-out subject, fit indices, validation indices) for the first LOSO folds of each part."""
    from trainer.loso import inner_split, loso_folds

    folds = loso_folds(subjects)
    chosen, per_part = [], {}
    for k, fold in enumerate(folds):
        part = datasets[int(fold.test[0])]
        if per_part.get(part, 0) < outer_per_part:
            per_part[part] = per_part.get(part, 0) + 1
            fit, val = inner_split(fold.train, subjects, fraction, seed * 1000 + k)
            chosen.append((fold.subject, fit, val))
    return chosen


def _split_recipe_and_build(family, overrides: dict):
    """Recipe fields go to the Recipe, anything else becomes a keyword of the family's build()."""
    from functools import partial

    recipe_fields = {"epochs", "lr", "batch_size", "weight_decay"}
    recipe = replace(family.recipe, **{k: v for k, v in overrides.items() if k in recipe_fields})
    build_kwargs = {k: v for k, v in overrides.items() if k not in recipe_fields}
    if build_kwargs:
        family = replace(family, build=partial(family.build, **build_kwargs))
    return family, recipe


def check_variants(family_name: str, variants: list[dict], num_classes: int) -> None:
    """Build every variant once, here, so that a bad key or value is one line before any training starts."""
    from trainer.models.registry import get_family

    for overrides in variants:
        family, _recipe = _split_recipe_and_build(get_family(family_name), overrides)
        try:
            family.build(num_classes)
        except TypeError as error:
            raise MestreamError(f"--variant {overrides} does not fit {family_name} ({error}); use epochs, lr, "
                                f"batch_size, weight_decay or a keyword of {family_name}'s build()") from None


def _train_and_validate(job: tuple) -> dict[str, np.ndarray]:
    """One (variant, split, seed): {scoring name: validation probabilities (n_val, C)}."""
    family_name, overrides, arrays, labels, fit, val, seed, num_classes = job
    import torch

    from trainer.models.registry import get_family
    from trainer.train import predict, train_model

    family, recipe = _split_recipe_and_build(get_family(family_name), overrides)
    trained = train_model(family, {n: a[fit] for n, a in arrays.items()}, labels[fit], None, recipe, seed,
                          num_classes)
    model = trained.model
    if hasattr(model, "mean_probability"):
        model.eval()
        flow = torch.from_numpy(arrays["flow"][val])
        out = {}
        with torch.no_grad():
            for members in range(1, model.members + 1):
                for mirror in (False, True):
                    out[f"members={members},mirror={int(mirror)}"] = model.mean_probability(flow, members, mirror).numpy()
        return out
    logits = predict(model, {n: a[val] for n, a in arrays.items()}, [s.name for s in family.inputs])
    return {"forward": torch.softmax(torch.from_numpy(logits), dim=1).numpy()}


def select(family_name: str, samples, variants: list[dict], seeds: list[int], outer_per_part: int = 1,
           workers: int = 1, split_seed: int = 0) -> dict:
    """Pooled validation UF1/UAR of every (variant, scoring) per seed and their mean over seeds."""
    from trainer.metrics import confusion_matrix, scores_from_confusion
    from trainer.models.registry import get_family
    from trainer.train import prepare_inputs

    family = get_family(family_name)
    check_variants(family_name, variants, len(samples.classes))
    arrays = prepare_inputs(family, samples)
    splits = validation_splits(samples.subjects, samples.datasets, outer_per_part, split_seed)
    num_classes = len(samples.classes)
    jobs, keys = [], []
    for v, overrides in enumerate(variants):
        for seed in seeds:
            for s, (_subject, fit, val) in enumerate(splits):
                jobs.append((family_name, overrides, arrays, samples.labels, fit, val, seed * 1000 + s, num_classes))
                keys.append((v, seed, s))
    if workers <= 1:
        results = [_train_and_validate(job) for job in jobs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_train_and_validate, jobs))
    table = []
    for v, overrides in enumerate(variants):
        scorings = results[keys.index((v, seeds[0], 0))].keys()
        for scoring in scorings:
            per_seed = []
            for seed in seeds:
                labels = np.concatenate([samples.labels[val] for _s, _f, val in splits])
                probs = np.concatenate([results[keys.index((v, seed, s))][scoring] for s in range(len(splits))])
                per_seed.append(scores_from_confusion(confusion_matrix(labels, probs.argmax(1), num_classes)))
            table.append({"variant": overrides, "scoring": scoring,
                          "uf1": float(np.mean([p["uf1"] for p in per_seed])),
                          "uar": float(np.mean([p["uar"] for p in per_seed])),
                          "uf1_per_seed": [round(p["uf1"], 4) for p in per_seed]})
    return {"family": family_name, "seeds": seeds, "outer_subjects": [s for s, _f, _v in splits],
            "validation_samples": int(sum(len(v) for _s, _f, v in splits)), "rows": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--family", required=True)
    parser.add_argument("--variant", action="append", default=[], help="KEY=VALUE,... overrides (repeatable)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--outer-per-part", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from trainer.data.megc2019 import load_megc2019

    try:
        variants = [parse_variant(v) for v in args.variant] or [{}]
        samples = load_megc2019(args.data, args.labels)
        result = select(args.family, samples, variants, args.seeds, args.outer_per_part, args.workers)
    except MestreamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["command"] = "python -m trainer.inner_select " + " ".join(sys.argv[1:] if argv is None else argv)
    atomic_write(args.out, json.dumps(result, indent=2))
    for row in sorted(result["rows"], key=lambda r: -r["uf1"]):
        print(f"{json.dumps(row['variant']):32s} {row['scoring']:22s} UF1 {row['uf1']:.4f} UAR {row['uar']:.4f} "
              f"per seed {row['uf1_per_seed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
