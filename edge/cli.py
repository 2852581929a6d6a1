"""`mestream`: one command, one sub-command per job.

Each job lives in its own module exposing HELP (one line), add_arguments(parser) and run(args) -> int.
Those modules keep their top-level imports light (argparse, pathlib): heavy libraries (torch, cv2,
mediapipe, tensorrt) are imported inside run(), so `mestream --help` starts fast and never imports torch.
The table names modules by string so that edge does not import trainer at import time.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engines.errors import MestreamError

# job name -> module implementing it (HELP, add_arguments, run)
COMMANDS: dict[str, str] = {
    "run": "edge.commands.run",
    "listen": "edge.commands.listen",
    "preview": "edge.commands.preview",
    "bench": "edge.commands.bench",
    "doctor": "edge.commands.doctor",
    "keys": "edge.commands.keys",
    "synth": "edge.commands.synth",
    "spot-eval": "edge.commands.spot_eval",
    "train": "trainer.commands.train",
    "export": "trainer.commands.export",
    "prep": "trainer.commands.prep",
    "train-spotter": "trainer.commands.train_spotter",
    "build-engine": "engines.commands.build_engine",
    "bench-flow": "edge.commands.bench_flow",
    "bench-engine": "trainer.commands.bench_engine",  # latency in engines, accuracy mode in the trainer
}
# jobs that start MediaPipe (in process or in their stages), whose native start-up chatter is filtered
# off stderr unless -vv asks for everything (edge/native_logs.py)
# (train starts the tracker in its prep workers for raw datasets; the filter costs nothing on the composite)
FACE_TRACKING_JOBS = frozenset({"run", "bench", "synth", "spot-eval", "prep", "train", "train-spotter"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mestream",
        description="Live facial micro-expression detection on the edge.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    # the same switches after the job's name (`mestream run -q ...`); SUPPRESS keeps the ones given before it
    levels = argparse.ArgumentParser(add_help=False)
    levels.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log lines (-vv for debug)")
    levels.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="JOB")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        job = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[levels])
        module.add_arguments(job)
        job.set_defaults(_run=module.run)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    """-q: warnings and errors; default: one INFO line per thing that matters; -v: mestream's own DEBUG
    lines too; -vv: every library's DEBUG lines."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose and not quiet:
        for package in ("edge", "trainer", "engines"):
            logging.getLogger(package).setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args.verbose, args.quiet)
    from edge.native_logs import filtered_native_stderr

    everything = args.verbose > 1 and not args.quiet
    try:
        with filtered_native_stderr(enabled=args.command in FACE_TRACKING_JOBS and not everything):
            return int(args._run(args) or 0)
    except MestreamError as exc:
        print(f"mestream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
