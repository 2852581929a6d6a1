"""`mestream build-engine --artifact A.onnx [--fp16 | --int8 --calib DIR] [--out-dir CACHE]`.

Builds (or finds in the cache) the TensorRT engine of an artifact for this GPU and this TensorRT, and
prints where it is. Run it once per device at provisioning time; the runtime would otherwise build on
first start (same cache, same name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build the TensorRT engine of an artifact for this GPU (cached by model hash, TensorRT, GPU, precision)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifact", type=Path, required=True, help=".onnx artifact written by `mestream export`")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="allow FP16 kernels (the usual choice on Jetson Orin)")
    precision.add_argument("--int8", action="store_true", help="INT8 with entropy calibration (needs --calib)")
    parser.add_argument("--calib", type=Path, help="folder of <input>.npy training inputs (`mestream export --calib-out`)")
    parser.add_argument("--out-dir", type=Path, help="engine cache folder (default $MESTREAM_ENGINE_CACHE or ~/.cache/mestream/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a matching engine is cached")


def run(args: argparse.Namespace) -> int:
    from engines.errors import MestreamError
    from engines.trt_build import default_cache_dir, ensure_engine, import_cuda_driver, import_tensorrt, read_sidecar

    precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"
    if args.int8 and args.calib is None:
        raise MestreamError("--int8 needs --calib DIR (one <input>.npy of training inputs per artifact input)")
    if args.calib is not None and not args.int8:
        raise MestreamError("--calib is only used with --int8; add --int8 or drop --calib")
    import_tensorrt()  # the missing piece users most often lack: say so before anything else
    cuda = import_cuda_driver()
    cuda.init()
    context = cuda.Device(0).retain_primary_context()
    context.push()
    try:
        plan = ensure_engine(
            args.artifact,
            precision=precision,
            cache_dir=args.out_dir or default_cache_dir(),
            calib_dir=args.calib,
            force=args.force,
        )
    finally:
        cuda.Context.pop()
    record = read_sidecar(plan)
    print(f"engine  {plan}")
    print(f"sidecar {plan.with_suffix('.json')}")
    print(f"device  {record['device']['gpu']} sm{''.join(map(str, record['device']['compute_capability']))}, "
          f"TensorRT {record['device']['trt_version']}, {record['precision']}, built {record['built']} "
          f"in {record['build_seconds']} s")
    return 0
