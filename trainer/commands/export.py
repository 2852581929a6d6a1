"""`mestream export --checkpoint DIR/model.pt --out A.onnx`: a trained checkpoint -> self-describing ONNX artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a trained checkpoint to a self-describing ONNX artifact (checked against ONNX Runtime)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="model.pt written by `mestream train --fit-all` (or its folder)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .onnx artifact (written atomically)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest allowed ONNX Runtime vs torch difference (default 1e-4)")


def run(args: argparse.Namespace) -> int:
    from engines.errors import MestreamError
    from trainer.export import export_checkpoint

    if args.out.suffix.lower() != ".onnx":
        raise MestreamError(f"--out {args.out} must end in .onnx; the runtime picks its engine by suffix")
    artifact = export_checkpoint(args.checkpoint, args.out, atol=args.atol)
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({size_kb:.0f} KiB)")
    print(artifact.summary())
    return 0
