"""`mestream prep`: dataset frames -> cached training inputs made by the edge's own tracker and flow code.

    mestream prep --dataset casme2 --frames CASME2_RAW_selected --sheet CASME2-coding-20190701.xlsx \\
        --loader-option version=2019-07-01 --out prep/casme2
    mestream prep --clips clips.csv --out prep/mine --workers 2
    mestream prep --form megc2019 --dataset casme2 --frames CASME2_Cropped --sheet ... --out prep/casme2-megc2019

Clips come from a raw-dataset loader (trainer/data: casme2, samm, smic, mmew, casme3; the official sheet
as distributed) or from a CSV (name, subject, frames_dir, onset, apex, offset). Per clip: aligned
onset/apex crops, the 28x28 u/v/strain flow form, an aligned RGB apex crop and a resampled aligned clip,
in OUT/<subject>/<name>.npz (see trainer/prep.py). Re-running resumes; clips that cannot be made are
listed with the reason and counted.

--form megc2019 instead reproduces the MEGC2019 composite's flow images (trainer/megc2019_form.py: no
tracker, a face box, the IPOL TV-L1 flow the composite was made with), one OUT/<subject>/<name>.png per clip
whose cv2 channels are (strain, v, u), the order the composite loader reads.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "prepare training inputs from dataset frames (alignment, TV-L1 flow form, apex crops), cached and resumable"

DATASETS = ("casme2", "samm", "smic", "mmew", "casme3")  # trainer.data.clips.LOADERS, named here to stay light
FORMS = ("live", "megc2019")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=DATASETS, help="read clips with this dataset's loader (needs --frames and --sheet)")
    src.add_argument("--clips", type=Path, help="CSV with name, subject, frames_dir, onset, apex, offset [, label, action_units]")
    parser.add_argument("--frames", type=Path, help="the dataset's frames root as it ships (e.g. CASME2_RAW_selected)")
    parser.add_argument("--sheet", type=Path, help="the dataset's official coding sheet")
    parser.add_argument("--loader-option", action="append", default=[], metavar="KEY=VALUE",
                        help="loader keyword, e.g. version=2019-07-01 for CASME II (repeatable)")
    parser.add_argument("--class-map", default=None, help="the loader's class mapping (default: the loader's own)")
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; reused when the parameters match)")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="parallel processes (default: cores, at most 4)")
    parser.add_argument("--size", type=int, default=128, help="aligned crop side S the flow is computed on (default 128, as the live tracker)")
    parser.add_argument("--apex-size", type=int, default=224, help="side of the aligned RGB apex crop (default 224)")
    parser.add_argument("--clip-frames", type=int, default=8, help="frames of the resampled aligned clip, onset to offset (0 = none; default 8)")
    parser.add_argument("--form", default="live", help="live (default: the live tracker's crops and flow, as infer "
                        "sees them) or megc2019 (the MEGC2019 composite's flow PNGs)")
    parser.add_argument("--face-box", default="whole", help="--form megc2019: whole (the frame is the face crop, as in "
                        "the Cropped releases; default) or eyes (the eye-distance box from FaceMesh)")
    parser.add_argument("--flow-size", type=int, default=224, help="--form megc2019: side the flow runs at before "
                        "the 28x28 resize (default 224; 28 = the published recipe, further from the composite)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips of the list")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _dataset_clips(args: argparse.Namespace) -> list:
    from engines.errors import MestreamError
    from trainer.data.clips import clip_spec, get_loader, parse_loader_options

    if args.frames is None or args.sheet is None:
        raise MestreamError(f"--dataset {args.dataset} needs --frames ROOT and --sheet SHEET (the official coding sheet)")
    kwargs = parse_loader_options(args.dataset, args.loader_option)
    if args.class_map is not None:
        kwargs["class_map_name"] = args.class_map
    result = get_loader(args.dataset)(args.frames, args.sheet, **kwargs)
    for name, message in result.warnings:
        print(f"sheet: {name}: {message}")
    if result.skipped:
        shown = "; ".join(f"{n}: {why}" for n, why in result.skipped[:3])
        print(f"loader skipped {len(result.skipped)} clips (first: {shown})")
    return [clip_spec(c) for c in result.clips]


def run(args: argparse.Namespace) -> int:
    from engines.errors import MestreamError

    form = getattr(args, "form", "live")
    if form not in FORMS:
        raise MestreamError(f"--form {form!r} is unknown; expected one of: {', '.join(FORMS)}")
    from edge.stages.face_tracking import TrackParams
    from trainer.prep import PrepParams, csv_clips, prep_clips

    if form == "megc2019":
        from trainer.megc2019_form import Megc2019Params

        form_params = Megc2019Params(box=args.face_box, flow_size=args.flow_size)  # checked before clips are read
    clips = _dataset_clips(args) if args.dataset is not None else csv_clips(args.clips)
    if args.limit is not None:
        clips = clips[: args.limit]
    from edge.tools.progress import show_progress

    if form == "megc2019":
        from trainer.megc2019_form import prep_megc2019

        report = prep_megc2019(clips, args.out, form_params, progress=show_progress(args))
    else:
        params = PrepParams(track=TrackParams(size=args.size, detect_every=1), apex_size=args.apex_size,
                            clip_frames=args.clip_frames)
        report = prep_clips(clips, args.out, params, workers=args.workers, progress=show_progress(args))
    for name, why in sorted(report.skipped.items()):
        print(f"skipped {name}: {why}")
    print(f"{args.out}: {report.summary()} of {len(clips)} clips")
    return 0 if report.done or report.cached or not clips else 1
