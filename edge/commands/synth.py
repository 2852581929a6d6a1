"""`mestream synth`: a spotting test video made from a real face video, plus its ground-truth CSV.

    mestream synth --face face.mp4 --out synth.mp4 --truth synth.csv --fps 30 --seconds 20 --seed 3 [--noise 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engines.errors import MestreamError

HELP = "make a test video with known micro/macro-expressions, blinks and head motion from a real face video"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--face", required=True, type=Path, help="real face video to warp (the face in every frame)")
    parser.add_argument("--out", required=True, type=Path, help="video to write: .mkv (FFV1, lossless), .avi (MJPG, like a USB webcam) or .mp4 (mp4v, lossy)")
    parser.add_argument("--truth", required=True, type=Path, help="ground-truth CSV to write")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the output video (default 30)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the output video (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the event plan and the noise (default 0)")
    parser.add_argument("--noise", type=float, metavar="GREY",
                        help="camera noise added to every frame: grey-level std (default 1.8, as CASME II's "
                             "camera; 0 = none)")
    parser.add_argument("--source-frames", metavar="START:END",
                        help="use only these frames of the face video (END exclusive), e.g. its neutral part")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from edge.tools import require_tools

    require_tools()
    from edge.tools.progress import show_progress
    from edge.tools.synth import SynthParams, synthesise

    if not args.face.is_file():
        raise MestreamError(f"--face {args.face} does not exist; expected a face video file")
    span = None
    if args.source_frames:
        try:
            start, end = (int(v) for v in args.source_frames.split(":"))
        except ValueError:
            raise MestreamError(f"--source-frames {args.source_frames!r}; expected START:END frame numbers, e.g. 7:15") from None
        span = (start, end)
    extra = {} if args.noise is None else {"noise_grey": args.noise}
    params = SynthParams(fps=args.fps, seconds=args.seconds, seed=args.seed, **extra)
    events = synthesise(args.face, args.out, args.truth, params, progress=show_progress(args), source_frames=span)
    counts = {k: sum(e.kind == k for e in events) for k in ("micro", "macro", "blink", "head")}
    print(f"wrote {args.out} ({args.seconds:g} s at {args.fps:g} fps) and {args.truth}: "
          + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0
