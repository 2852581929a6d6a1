"""`mestream train`: leave-one-subject-out training and evaluation of one model family.

    mestream train --model msmt --dataset megc2019 \\
        --data $MESTREAM_ASSETS/preprocessed/HTNet_MEGC2019_composite \\
        --labels $MESTREAM_ASSETS/annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv \\
        --protocol loso --seed 0 --out runs/msmt-s0 [--fit-all] [--epochs N] [--folds K] [--workers W]

Writes OUT/report.json, per_subject.csv, predictions.csv, confusion.png, curves.png, per_subject.png (and
model.pt with --fit-all) through a temporary folder renamed into place at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a model family with leave-one-subject-out and write its report (and, with --fit-all, model.pt)"

DATASETS = ("megc2019", "casme2", "samm", "smic", "mmew", "casme3", "megc2019-frames")  # raw: clips.py LOADERS
PROTOCOLS = ("loso",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model family (see trainer/models/registry.py)")
    parser.add_argument("--dataset", default="megc2019", help="megc2019 (preprocessed composite) or a raw dataset read "
                        "from its frames and official sheet: casme2, samm, smic, mmew, casme3, megc2019-frames")
    parser.add_argument("--data", required=True, type=Path,
                        help="folder with STSNet_whole_norm_u_v_os/ and combined_datasets_whole/, or a raw dataset's frames root")
    parser.add_argument("--labels", required=True, type=Path, help="the composite's labels CSV, or the raw dataset's sheet")
    parser.add_argument("--class-map", default=None, help="raw datasets: class mapping (trainer/data/clips.py CLASS_MAPS)")
    parser.add_argument("--loader-option", action="append", default=[], metavar="KEY=VALUE",
                        help="raw datasets: loader argument, e.g. version=2019-07-01 (casme2), layout=hs-e (smic)")
    parser.add_argument("--prep-dir", type=Path, default=None,
                        help="raw datasets: mestream prep cache (default: OUT's parent/.mestream-prep/DATASET)")
    parser.add_argument("--protocol", default="loso", help="evaluation protocol; only loso")
    parser.add_argument("--seed", type=int, default=0, help="base seed; fold k trains with seed*1000+k")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--au-sheets", type=Path, default=None,
                        help="folder of official FACS coding sheets, for families that use AU text")
    parser.add_argument("--fit-all", action="store_true",
                        help="also train one model on every sample and write OUT/model.pt")
    parser.add_argument("--epochs", type=int, default=None, help="override the family's fixed epoch count")
    parser.add_argument("--folds", type=int, default=None, help="run only the first K subjects (quick checks)")
    parser.add_argument("--assets", type=Path, default=None,
                        help="assets root for families that pre-train on other data (default: $MESTREAM_ASSETS)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for reusable pre-training results (default: OUT's parent/.mestream-cache)")
    parser.add_argument("--workers", type=int, default=1,
                        help="folds trained in parallel processes (same numbers as 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where folds train (cuda: an NVIDIA GPU with a CUDA build of torch)")


def _check_args(args) -> None:
    from engines.errors import MestreamError

    if args.dataset not in DATASETS:
        raise MestreamError(f"unknown dataset {args.dataset!r}; expected one of: {', '.join(DATASETS)}")
    if args.protocol not in PROTOCOLS:
        raise MestreamError(f"unknown protocol {args.protocol!r}; expected one of: {', '.join(PROTOCOLS)}")
    if args.folds is not None and args.folds < 1:
        raise MestreamError(f"--folds {args.folds} is not a positive count; pass an integer >= 1")
    if args.workers < 1:
        raise MestreamError(f"--workers {args.workers} is not a positive count; pass an integer >= 1")
    if args.seed < 0:  # numpy's generators take only non-negative seeds
        raise MestreamError(f"--seed {args.seed} is negative; pass an integer >= 0")
    if not args.data.is_dir():
        raise MestreamError(f"--data {args.data} is not a folder; expected the preprocessed MEGC2019 composite")


def selection_text(family_name: str, recipe, epochs_overridden: bool) -> str:
    provenance = recipe.extra.get("provenance", "set before evaluation")
    text = (f"fixed recipe (trainer/models/{family_name}.py Recipe, {provenance}): {recipe.epochs} epochs, "
            f"lr {recipe.lr} (one-cycle), batch {recipe.batch_size}, weight decay {recipe.weight_decay}, "
            "class-balanced sampling, horizontal-mirror augmentation; every fold trains from scratch for exactly "
            "that many epochs and predicts its held-out subject once, after the last epoch; no early stopping "
            "and no epoch, checkpoint or threshold is chosen by looking at a test subject")
    if epochs_overridden:
        text += f"; epochs overridden on the command line to {recipe.epochs}"
    return text


def skip_warning(dataset: str, skipped: list[str]) -> str:
    """The composite skips sample files; a raw dataset skips whole clips (not on disk, or prep could not make them)."""
    if dataset == "megc2019":
        return f"{len(skipped)} file(s) missing or unreadable; their samples were skipped"
    return f"{len(skipped)} clips skipped (frames missing, or prep could not make them; listed in report.json), first: {skipped[0]}"


def run(args) -> int:
    _check_args(args)
    import logging
    import os
    import platform
    from dataclasses import asdict

    from tqdm import tqdm

    from engines.optional import require
    from trainer.checkpoint import save_checkpoint
    from trainer.data.megc2019 import load_megc2019
    from trainer.data.samples import PARTS as COMPOSITE_PARTS
    from trainer.models.registry import get_family
    from trainer.report import build_report, staged_dir, write_report_files
    from trainer.train import NUM_THREADS, fit_all, run_loso, run_pretrain, with_epochs

    log = logging.getLogger("mestream.train")
    family = get_family(args.model)
    torch = require("torch", "train")
    device = getattr(args, "device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from engines.errors import MestreamError

        raise MestreamError("--device cuda but torch sees no CUDA GPU; use --device cpu or install a CUDA build of torch")
    recipe = with_epochs(family.recipe, args.epochs)
    PARTS = COMPOSITE_PARTS if args.dataset.startswith("megc2019") else (args.dataset,)
    if args.dataset == "megc2019":
        samples = load_megc2019(args.data, args.labels, args.au_sheets)
    else:  # raw frames + official sheet -> clips -> mestream prep's inputs (edge tracker and flow code)
        from trainer.data.clips import load_training_samples

        samples = load_training_samples(args.dataset, args.data, args.labels,
                                        args.prep_dir or args.out.parent / ".mestream-prep" / args.dataset,
                                        args.class_map, args.loader_option, workers=args.workers)
    if samples.skipped:
        log.warning("%s", skip_warning(args.dataset, samples.skipped))

    assets = args.assets or (Path(os.environ["MESTREAM_ASSETS"]) if os.environ.get("MESTREAM_ASSETS") else None)
    cache = args.cache or args.out.parent / ".mestream-cache"
    with staged_dir(args.out) as tmp:
        folds_total = len(dict.fromkeys(samples.subjects))
        folds_run = min(args.folds or folds_total, folds_total)
        from edge.tools.progress import show_progress

        with tqdm(total=folds_run, desc=f"{family.name} LOSO", unit="fold", disable=not show_progress(args)) as bar:
            result = run_loso(family, samples, args.seed, recipe, fold_limit=args.folds, work_dir=cache,
                              assets=assets, progress=lambda fold: bar.update(1), workers=args.workers,
                              device=device)
        report = {
            "protocol": "loso",
            "dataset": args.dataset,
            "model": family.name,
            "summary": family.summary,
            "seed": args.seed,
            **build_report(samples, result.logits, result.fold_of, PARTS),
            "selection": selection_text(family.name, recipe, args.epochs is not None),
            "classes": samples.classes,
            "counts": {
                "samples": len(samples),
                "subjects": folds_total,
                "folds_run": folds_run,
                "fold_limit": args.folds,
                "per_class": {c: int((samples.labels == i).sum()) for i, c in enumerate(samples.classes)},
                "per_part": {p: samples.datasets.count(p) for p in PARTS},
            },
            "recipe": asdict(recipe),
            "epochs_override": args.epochs,
            "inputs": [asdict(spec) for spec in family.inputs],
            "time": {"seconds": round(result.seconds, 1), "pretrain_seconds": round(result.pretrain_seconds, 1),
                     "seconds_per_fold": round(result.seconds / folds_run, 2), "workers": args.workers,
                     "torch_threads": NUM_THREADS, "device": device},
            "skipped": {"count": len(samples.skipped), "files": samples.skipped},
            "curves": result.curves,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": __import__("numpy").__version__},
        }
        if args.fit_all:
            initial_state = run_pretrain(family, args.seed, cache, assets)
            trained = fit_all(family, samples, args.seed, recipe, initial_state, device)
            save_checkpoint(tmp / "model.pt", family, trained.model, classes=samples.classes, recipe=recipe,
                            seed=args.seed, protocol="loso", scores=report["parts"], selection=report["selection"],
                            training={"dataset": args.dataset, "samples": len(samples), "subjects": folds_total})
            report["fit_all"] = {"file": "model.pt", "final_training_loss": trained.loss[-1],
                                 "final_training_acc": trained.acc[-1]}
        write_report_files(tmp, report, samples, result.logits, result.fold_of, result.curves)
    full = report["parts"]["full"]
    print(f"{family.name} LOSO seed {args.seed} ({folds_run} folds, {result.seconds:.0f}s): "
          f"UF1 {full['uf1']:.4f} UAR {full['uar']:.4f} acc {full['acc']:.4f} -> {args.out}")
    for part in PARTS:
        if part in report["parts"]:
            s = report["parts"][part]
            print(f"  {part:7s} UF1 {s['uf1']:.4f} UAR {s['uar']:.4f} (n={s['n']})")
    return 0
