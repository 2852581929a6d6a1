"""`mestream bench-engine --artifact A.onnx [--backend ort|trt] [--precision fp16] [-n 2000]`: inference latency.

Times `engine.infer()` end to end (input checks, host<->device copies for TensorRT, softmax in the graph)
on random inputs of the artifact's own shapes, after a warm-up, and prints percentiles and throughput.
With several backends (`--backend ort --backend trt`) they run side by side on the same inputs.

The timing lives here, in engines, which imports neither edge nor trainer. `mestream bench-engine` is
trainer/commands/bench_engine.py: these options and this timing, plus an accuracy mode (--data/--labels)
that prepares samples the trainer's way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "time engine.infer() of an artifact (ONNX Runtime and/or TensorRT): latency percentiles, throughput"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifact", type=Path, default=None, help=".onnx artifact (default: the shipped default artifact)")
    parser.add_argument("--backend", action="append", choices=("ort", "trt"), help="engine(s) to time (default: ort)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32", help="TensorRT precision (default fp32)")
    parser.add_argument("--calib", type=Path, help="calibration folder for --precision int8")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1: the edge shares its cores; 0 = its own pool)")
    parser.add_argument("-n", "--iterations", type=int, default=2000, help="timed calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (default 100)")


def open_backend(backend: str, args: argparse.Namespace):
    from engines.base import open_engine

    if backend == "ort":
        return open_engine(args.artifact, backend="ort", threads=args.threads)
    return open_engine(args.artifact, backend="trt", precision=args.precision, calib_dir=args.calib)


def check_arguments(args: argparse.Namespace) -> None:
    """One-line errors for bad timing options; fills in the default artifact."""
    from engines import default_artifact_path
    from engines.errors import MestreamError

    if args.iterations < 1 or args.warmup < 0:
        raise MestreamError(f"-n {args.iterations} / --warmup {args.warmup}: expected -n >= 1 and --warmup >= 0")
    if args.threads < 0:
        raise MestreamError(f"--threads {args.threads}: expected ONNX Runtime intra-op threads >= 0 (0 = its own pool, one per core)")
    args.artifact = args.artifact or default_artifact_path()
    if "trt" not in (args.backend or ["ort"]) and (args.precision != "fp32" or args.calib is not None):
        # ONNX Runtime runs the artifact's FP32 graph: a silently ignored --precision would read as its cost
        raise MestreamError(f"--precision {args.precision} / --calib apply to TensorRT; add --backend trt, or drop them for ONNX Runtime")


def open_engines(args: argparse.Namespace) -> dict:
    """backend name -> open engine, in the order asked (the first is the reference); closes what opened on error."""
    engines = {}
    try:
        for name in args.backend or ["ort"]:
            engines[name] = open_backend(name, args)
    except BaseException:
        close_engines(engines)
        raise
    return engines


def close_engines(engines: dict) -> None:
    for engine in engines.values():
        engine.close()


def backend_label(name: str, args: argparse.Namespace) -> str:
    return name if name == "ort" else f"trt-{args.precision}"


def time_engines(args: argparse.Namespace, engines: dict) -> None:
    """Warm up, then time args.iterations calls of each engine on the same random inputs; print one line each."""
    import time

    import numpy as np

    backends = list(engines)
    meta = next(iter(engines.values())).meta
    rng = np.random.default_rng(0)
    feeds = [{s.name: rng.random(s.shape, dtype=np.float32) for s in meta.inputs} for _ in range(16)]
    print(f"artifact {args.artifact} ({meta.family} {meta.short_id}); inputs "
          + ", ".join(f"{s.name} {list(s.shape)}" for s in meta.inputs))
    reference = None
    for name, engine in engines.items():
        for i in range(args.warmup):
            engine.infer(feeds[i % len(feeds)])
        times = np.empty(args.iterations)
        for i in range(args.iterations):
            start = time.perf_counter_ns()
            engine.infer(feeds[i % len(feeds)])
            times[i] = (time.perf_counter_ns() - start) / 1e6
        probs = engine.infer(feeds[0])["probs"]
        agree = "" if reference is None else f", max |probs - {backends[0]}| {float(np.max(np.abs(probs - reference))):.2e}"
        reference = probs if reference is None else reference
        p50, p90, p99 = np.percentile(times, [50, 90, 99])
        print(f"{backend_label(name, args):9s} n={args.iterations} p50 {p50:.3f} ms  p90 {p90:.3f} ms  p99 {p99:.3f} ms  "
              f"mean {times.mean():.3f} ms  {1000.0 / times.mean():.0f} infer/s{agree}")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    engines = open_engines(args)
    try:
        time_engines(args, engines)
    finally:
        close_engines(engines)
    return 0
