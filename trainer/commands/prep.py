"""`mestream prep`: dataset frames -> cached training inputs made by the edge's own tracker and flow code.

    mestream prep --casme2-sheet CASME2-coding-20190701.xlsx --frames CASME2_RAW_selected --out prep/casme2
    mestream prep --clips clips.csv --out prep/mine --workers 2

Per clip: aligned onset/apex crops, the 28x28 u/v/strain flow form, an aligned RGB apex crop and a
resampled aligned clip, in OUT/<subject>/<name>.npz (see trainer/prep.py). Re-running resumes; clips that
cannot be made are listed with the reason and counted.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "prepare training inputs from dataset frames (alignment, TV-L1 flow form, apex crops), cached and resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--casme2-sheet", type=Path, help="CASME II coding sheet (.xlsx, 2014-05-08 or 2019-07-01); needs --frames")
    src.add_argument("--clips", type=Path, help="CSV with name, subject, frames_dir, onset, apex, offset [, label, action_units]")
    parser.add_argument("--frames", type=Path, help="CASME II frames root holding sub01/EP02_01f/img46.jpg ...")
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; reused when the parameters match)")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="parallel processes (default: cores, at most 4)")
    parser.add_argument("--size", type=int, default=128, help="aligned crop side S the flow is computed on (default 128, as the live tracker)")
    parser.add_argument("--apex-size", type=int, default=224, help="side of the aligned RGB apex crop (default 224)")
    parser.add_argument("--clip-frames", type=int, default=8, help="frames of the resampled aligned clip, onset to offset (0 = none; default 8)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips of the list")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from edge.stages.face_tracking import TrackParams
    from engines.errors import MestreamError
    from trainer.prep import PrepParams, casme2_clips, csv_clips, prep_clips

    if args.casme2_sheet is not None:
        if args.frames is None:
            raise MestreamError("--casme2-sheet needs --frames ROOT (the folder holding sub01/, sub02/, ...)")
        if not args.frames.is_dir():
            raise MestreamError(f"--frames {args.frames} is not a folder; pass the CASME II frames root")
        clips, problems = casme2_clips(args.casme2_sheet, args.frames)
        for line in problems:
            print(f"sheet: {line}")
    else:
        clips = csv_clips(args.clips)
    if args.limit is not None:
        clips = clips[: args.limit]
    params = PrepParams(track=TrackParams(size=args.size, detect_every=1), apex_size=args.apex_size, clip_frames=args.clip_frames)
    report = prep_clips(clips, args.out, params, workers=args.workers, progress=not args.no_progress)
    for name, why in sorted(report.skipped.items()):
        print(f"skipped {name}: {why}")
    print(f"{args.out}: {report.summary()} of {len(clips)} clips")
    return 0 if report.done or report.cached or not clips else 1
