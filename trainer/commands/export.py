"""`mestream export --checkpoint DIR/model.pt --out A.onnx`: a trained checkpoint -> self-describing ONNX artifact.

With `--calib-out DIR --data DATA --labels CSV` it also saves the model's training inputs as
`DIR/<input>.npy`, the INT8 calibration set that `mestream build-engine --int8 --calib DIR` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a trained checkpoint to a self-describing ONNX artifact (checked against ONNX Runtime)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="model.pt written by `mestream train --fit-all` (or its folder)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .onnx artifact (written atomically)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest allowed ONNX Runtime vs torch difference (default 1e-4)")
    parser.add_argument("--calib-out", type=Path, help="also write the INT8 calibration set (<input>.npy) to this folder")
    parser.add_argument("--data", type=Path, help="composite data folder for --calib-out (as for `mestream train`)")
    parser.add_argument("--labels", type=Path, help="composite labels CSV for --calib-out (as for `mestream train`)")
    parser.add_argument("--calib-samples", type=int, default=None, help="keep a seeded random subset of N samples (default: all)")


def run(args: argparse.Namespace) -> int:
    from engines.errors import MestreamError
    from trainer.export import export_checkpoint, write_calibration_set

    if args.out.suffix.lower() != ".onnx":
        raise MestreamError(f"--out {args.out} must end in .onnx; the runtime picks its engine by suffix")
    if args.calib_out is not None and (args.data is None or args.labels is None):
        raise MestreamError("--calib-out needs --data DIR and --labels CSV (the composite the model was trained on)")
    artifact = export_checkpoint(args.checkpoint, args.out, atol=args.atol)
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({size_kb:.0f} KiB)")
    print(artifact.summary())
    if args.calib_out is not None:
        shapes = write_calibration_set(artifact.family, args.data, args.labels, args.calib_out, limit=args.calib_samples)
        print(f"calibration set {args.calib_out}: " + ", ".join(f"{name}.npy {list(shape)}" for name, shape in shapes.items()))
    return 0
