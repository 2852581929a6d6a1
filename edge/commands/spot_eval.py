"""`mestream spot-eval`: run capture -> track -> spot on a video and score the spotted intervals.

The stages run in this process (run_chain, no sockets), the file as fast as it decodes. Intervals are
scored against a truth CSV (from `mestream synth`) with the standard metric: a hit is IoU >= 0.5 in
frames, counted inclusively; precision, recall and F1 for micro, macro and overall. Without --truth it
only lists what was spotted (a negative video should list no micro-expressions).

    mestream spot-eval --source synth.mp4 --truth synth.csv --plot spot.png --json spot.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.errors import MestreamError

HELP = "run capture -> track -> spot on a video and score the intervals (IoU >= 0.5 P/R/F1), with a plot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="video file to spot on")
    parser.add_argument("--truth", type=Path, help="ground-truth CSV (from `mestream synth`)")
    parser.add_argument("--plot", type=Path, help="write a PNG of the motion signal, threshold, truth and detections (default: next to --json)")
    parser.add_argument("--json", type=Path, help="write the scores and intervals as JSON")
    parser.add_argument("--artifact", type=Path, help="spot with this learned (softnet) spotter instead of the training-free one")


def run(args: argparse.Namespace) -> int:
    if "://" not in args.source and " ! " not in args.source and not Path(args.source).is_file():
        raise MestreamError(f"--source {args.source} does not exist; expected a video file")
    if args.truth is not None and not args.truth.is_file():
        raise MestreamError(f"--truth {args.truth} does not exist; expected a CSV written by `mestream synth`")
    from edge.tools import require_tools

    require_tools()
    from edge.tools.progress import show_progress
    from edge.tools.spot_eval import evaluate, plot
    from engines.files import atomic_write

    result = evaluate(args.source, args.truth, progress=show_progress(args), artifact=args.artifact)
    lost = sum(s["event"] == "face_lost" for s in result["statuses"])
    found = sum(s["event"] == "face_found" for s in result["statuses"])
    print(f"{Path(args.source).name}: {result['frames']} frames with a face at {result['fps']:g} fps; "
          f"face_found {found}, face_lost {lost}; spotted {result['counts']['micro']} micro, "
          f"{result['counts']['macro']} macro")
    if "scores" in result:
        print(f"{'':8s} {'TP':>4s} {'pred':>5s} {'truth':>5s} {'P':>6s} {'R':>6s} {'F1':>6s}")
        for kind, c in result["scores"].items():
            print(f"{kind:8s} {c['tp']:4d} {c['predicted']:5d} {c['truth']:5d} "
                  f"{c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f}")
    if args.json is not None:
        doc = {k: v for k, v in result.items() if k != "trace"}
        if not args.json.parent.is_dir():
            raise MestreamError(f"folder {args.json.parent} does not exist; create it first or choose another path")
        atomic_write(args.json, json.dumps(doc, indent=1))
    plot_path = args.plot or (args.json.with_suffix(".png") if args.json is not None else None)
    if plot_path is not None:  # the timeline goes next to the JSON unless --plot says where
        plot(result, plot_path)
    return 0
