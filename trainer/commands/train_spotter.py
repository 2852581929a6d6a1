"""`mestream train-spotter`: train the learned apex spotter (SOFTNet family) and export it as an artifact.

    mestream train-spotter --dataset synth --videos synth/ --out runs/spotter [--protocol lovo|loso]
    mestream train-spotter --dataset casme2-lv --videos CASME2/rawvideo --labels casme2_annotation_357.csv --out runs/spotter
    mestream train-spotter --dataset samm-lv --videos SAMM_longvideos --labels samm_annotation.csv --out runs/spotter

synth: every VIDEO.mp4 in --videos with the VIDEO.csv `mestream synth` wrote next to it (subject = the
name before its last "_"). casme2-lv / samm-lv: the dataset's video files or frame folders under --videos
and its interval CSV (--labels-format lgsnet|auwgcn, --frame-step 8 for AUW-GCN's samm_new_25.csv).
Writes OUT/spotter.onnx (family "softnet", pluggable with [stages.spot] method = "learned",
artifact = "OUT/spotter.onnx") and OUT/report.json (held-out scores per fold, pooled; the chosen peaks),
through a temporary folder renamed into place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engines.errors import MestreamError

HELP = "train the learned apex spotter (SOFTNet) on long videos with leave-one-video/subject-out and export it"

DATASETS = ("synth", "casme2-lv", "samm-lv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="synth", choices=DATASETS, help="synth (mestream synth videos + CSVs), "
                        "casme2-lv or samm-lv (long videos + interval CSV)")
    parser.add_argument("--videos", required=True, type=Path, help="folder of the videos (files or frame folders)")
    parser.add_argument("--labels", type=Path, default=None, help="casme2-lv / samm-lv: the interval CSV")
    parser.add_argument("--labels-format", default="lgsnet", choices=("lgsnet", "auwgcn"),
                        help="interval CSV layout (trainer/data/spotting_sets.py)")
    parser.add_argument("--frame-step", type=int, default=1, help="frames of the recording per CSV frame (8 for samm_new_25.csv)")
    parser.add_argument("--protocol", default="lovo", choices=("lovo", "loso"),
                        help="leave-one-video-out (default) or leave-one-subject-out")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--epochs", type=int, default=10, help="fixed epoch count (default 10)")
    parser.add_argument("--lag", type=float, default=0.2, help="k in seconds: flow from frame i to i+k (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; fold f trains with seed*1000+f")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for tracked crops (default: OUT's parent/.mestream-cache/spotting)")


def run(args: argparse.Namespace) -> int:
    import json

    from edge.spotting.learned import FeatureSpec
    from trainer.report import staged_dir
    from trainer.spotting.train import SpotterRecipe, load_long_videos, load_synth_videos, train_spotter

    if args.dataset != "synth" and args.labels is None:
        raise MestreamError(f"--dataset {args.dataset} needs --labels CSV (the interval CSV of the long videos)")
    if args.labels is not None and not args.labels.is_file():
        raise MestreamError(f"--labels {args.labels} does not exist; expected the interval CSV")
    if not args.out.parent.is_dir():
        raise MestreamError(f"folder {args.out.parent} does not exist; create it first or choose another --out")
    spec = FeatureSpec(lag_s=args.lag)
    recipe = SpotterRecipe(epochs=args.epochs, seed=args.seed)
    cache = args.cache or args.out.parent / ".mestream-cache" / "spotting"
    if args.dataset == "synth":
        videos = load_synth_videos(args.videos, spec, cache)
    else:
        videos = load_long_videos(args.dataset, args.videos, args.labels, spec, cache, args.labels_format, args.frame_step)
    with staged_dir(args.out) as tmp:
        command = "mestream " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("mestream") else ""
        report = train_spotter(videos, spec, recipe, args.protocol, tmp / "spotter.onnx", args.dataset, command)
        report["artifact"] = str(args.out / "spotter.onnx")
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
    cv = report["cross_validation"]["pooled"]
    print(f"{len(videos)} videos, {report['training']['samples']} windows; {args.protocol} held-out (peaks chosen per fold "
          "on its training videos):")
    print(f"{'':8s} {'TP':>4s} {'pred':>5s} {'truth':>5s} {'P':>6s} {'R':>6s} {'F1':>6s}")
    for kind in ("micro", "macro", "overall"):
        c = cv[kind]
        print(f"{kind:8s} {c['tp']:4d} {c['predicted']:5d} {c['truth']:5d} {c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f}")
    print(f"shipped peaks {report['peaks']}; wrote {args.out / 'spotter.onnx'} and {args.out / 'report.json'}")
    return 0
