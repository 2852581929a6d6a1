"""`mestream train`: leave-one-subject-out training and evaluation of one model family.

    mestream train --model msmt --dataset megc2019 \\
        --data $MESTREAM_ASSETS/preprocessed/HTNet_MEGC2019_composite \\
        --labels $MESTREAM_ASSETS/annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv \\
        --protocol loso --seed 0 --out runs/msmt-s0 [--fit-all] [--epochs N] [--folds K] [--workers W]

With `--add DATASET FRAMES SHEET` (repeatable) it also trains on a raw dataset prepared from its frames, e.g. the
composite plus live-form CASME II (the shipped default's recipe, benchmarks/make_default_artifact.sh):

    mestream train --model ststnorm --dataset megc2019 --data COMPOSITE --labels CSV \\
        --add casme2 $MESTREAM_ASSETS/casme2_cropped/CASME2_Cropped CASME2-coding-20190701.xlsx \\
        --loader-option version=2019-07-01 --seed 1 --out runs/default --fit-all

One person is one LOSO fold whichever source their samples come from (trainer/data/combined.py). Beside the
composite's images the added clips' aligned crops are re-cut to the composite's framing (COMPOSITE_WINDOW) before
the flow, and model.pt records that window, so `mestream export` declares it and the classify stage re-cuts live
crops the same way.

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
    parser.add_argument("--add", nargs=3, action="append", default=[], metavar=("DATASET", "FRAMES", "SHEET"),
                        help="also train on a raw dataset read from its frames and official sheet (repeatable): one "
                        "person is one LOSO fold across sources; beside megc2019 its crops are re-cut to the "
                        "composite's framing and its class map defaults to megc2019-3class")
    parser.add_argument("--both-framings", action="store_true",
                        help="beside megc2019, train on each --add clip twice: crops re-cut to the composite's framing "
                        "and crops as they come (framing as augmentation; part <dataset>-frames-uncut)")
    parser.add_argument("--class-map", default=None, help="raw datasets: class mapping (trainer/data/clips.py CLASS_MAPS)")
    parser.add_argument("--loader-option", action="append", default=[], metavar="[DATASET:]KEY=VALUE",
                        help="raw datasets: loader argument, e.g. version=2019-07-01 (casme2), layout=hs-e (smic); "
                        "DATASET: sends it to that one of several raw datasets")
    parser.add_argument("--prep-dir", type=Path, default=None,
                        help="raw datasets: mestream prep cache (default: OUT's parent/.mestream-prep/DATASET); "
                        "only with one dataset read from frames")
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
    from trainer.data.clips import LOADERS

    for dataset, frames, _sheet in args.add:
        if dataset not in LOADERS:
            raise MestreamError(f"--add {dataset!r} is not a dataset read from frames; expected one of: {', '.join(LOADERS)}")
        if not Path(frames).is_dir():
            raise MestreamError(f"--add {dataset} {frames}: not a folder; expected the dataset's frames root")
    added = [d for d, _f, _s in args.add]
    if args.dataset in added or len(set(added)) < len(added):
        twice = args.dataset if args.dataset in added else next(d for d in added if added.count(d) > 1)
        raise MestreamError(f"dataset {twice!r} is given twice; pass each dataset once")
    if args.both_framings and not (args.add and args.dataset == "megc2019"):
        raise MestreamError("--both-framings needs --dataset megc2019 and an --add dataset: only clips added beside the "
                            "composite are re-cut to its framing; leave it out")
    if args.prep_dir is not None and len(raw_datasets(args)) > 1:
        raise MestreamError(f"--prep-dir names one cache but {len(raw_datasets(args))} datasets are read from frames "
                            f"({', '.join(raw_datasets(args))}); leave it out (each gets OUT's parent/.mestream-prep/DATASET)")


def raw_datasets(args) -> list[str]:
    """The datasets of this run read from frames and prepared by `mestream prep`'s code."""
    return ([] if args.dataset == "megc2019" else [args.dataset]) + [d for d, _f, _s in args.add]


def load_samples(args, workers: int):
    """(samples, crop_window): --dataset and every --add source in one Samples; crop_window is the framing the
    model is trained on (the composite's when its images are in the set, else None: crops as they come)."""
    from trainer.data.clips import load_training_samples, options_for
    from trainer.data.megc2019 import load_megc2019

    crop_window = None
    if args.dataset == "megc2019":
        from edge.perception.composite_framing import COMPOSITE_WINDOW

        crop_window = COMPOSITE_WINDOW
    raw = raw_datasets(args)

    def from_frames(dataset, frames, sheet, class_map):
        """(the dataset's samples, flow of the aligned crops as they come; its prep cache)"""
        prep_dir = args.prep_dir or args.out.parent / ".mestream-prep" / dataset
        samples = load_training_samples(dataset, Path(frames), Path(sheet), prep_dir, class_map,
                                        options_for(dataset, args.loader_option, raw), workers=workers)
        return samples, prep_dir

    if args.dataset == "megc2019":
        primary = load_megc2019(args.data, args.labels, args.au_sheets)
    else:  # raw frames + official sheet -> clips -> mestream prep's inputs (edge tracker and flow code)
        primary, _ = from_frames(args.dataset, args.data, args.labels, args.class_map)
    if not args.add:
        return primary, crop_window
    from dataclasses import replace

    from trainer.data.combined import UNCUT_SUFFIX, as_frames_part, combine
    from trainer.prep import reframed_flow

    added_map = args.class_map or ("megc2019-3class" if args.dataset.startswith("megc2019") else None)
    added = [from_frames(d, f, s, added_map) for d, f, s in args.add]
    parts = [primary if args.dataset == "megc2019" else as_frames_part(primary)]
    for part, prep_dir in added:
        if crop_window is not None:  # beside the composite: the crops re-cut to its framing, as the stage does live
            part = replace(part, flow=reframed_flow(prep_dir, part.subjects, part.names, crop_window).astype("float32"))
        parts.append(as_frames_part(part))
    if args.both_framings:  # the same clips once more with their crops as they come (their skips are counted once)
        parts += [as_frames_part(replace(part, skipped=[]), UNCUT_SUFFIX) for part, _ in added]
    return combine(parts), crop_window


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


def dataset_name(args) -> str:
    """"megc2019", or with --add the sources joined: "megc2019+casme2"."""
    return "+".join([args.dataset, *(d for d, _f, _s in args.add)])


def training_record(args, samples, subjects: int) -> dict:
    """What model.pt (and so the artifact and its card) says it was trained on."""
    record = {"dataset": dataset_name(args), "samples": len(samples), "subjects": subjects}
    if args.add:
        record["parts"] = {p: samples.datasets.count(p) for p in dict.fromkeys(samples.datasets)}
    return record


def run(args) -> int:
    _check_args(args)
    import logging
    import os
    import platform
    from dataclasses import asdict

    from tqdm import tqdm

    from engines.optional import require
    from trainer.checkpoint import save_checkpoint
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
    samples, crop_window = load_samples(args, args.workers)
    if args.add:  # every part present, in order: the composite's, then each added dataset's "-frames" part
        PARTS = tuple(dict.fromkeys(samples.datasets))
    else:
        PARTS = COMPOSITE_PARTS if args.dataset.startswith("megc2019") else (args.dataset,)
    if samples.skipped:
        log.warning("%s", skip_warning(dataset_name(args), samples.skipped))

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
            "dataset": dataset_name(args),
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
                            seed=args.seed, protocol="loso", scores={"parts": report["parts"], "interval": report["interval"]},
                            selection=report["selection"],
                            training=training_record(args, samples, folds_total), crop_window=crop_window)
            report["fit_all"] = {"file": "model.pt", "final_training_loss": trained.loss[-1],
                                 "final_training_acc": trained.acc[-1]}
        write_report_files(tmp, report, samples, result.logits, result.fold_of, result.curves)
    full = report["parts"]["full"]
    low, high = report["interval"]["uf1"]
    print(f"{family.name} LOSO seed {args.seed} ({folds_run} folds, {result.seconds:.0f}s): "
          f"UF1 {full['uf1']:.4f} (95% {low:.2f}-{high:.2f} over resampled subjects) UAR {full['uar']:.4f} "
          f"acc {full['acc']:.4f} -> {args.out}")
    for part in PARTS:
        if part in report["parts"]:
            s = report["parts"][part]
            print(f"  {part:7s} UF1 {s['uf1']:.4f} UAR {s['uar']:.4f} (n={s['n']})")
    return 0
