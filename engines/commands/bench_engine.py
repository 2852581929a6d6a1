"""`mestream bench-engine --artifact A.onnx [--backend ort|trt] [--precision fp16] [-n 2000]`: inference latency.

Times `engine.infer()` end to end (input checks, host<->device copies for TensorRT, softmax in the graph)
on random inputs of the artifact's own shapes, after a warm-up, and prints percentiles and throughput.
With several backends (`--backend ort --backend trt`) they run side by side on the same inputs.

With `--data DIR --labels CSV` (the MEGC2019 composite, needs the [train] extra) each backend also
classifies every sample and prints UF1/UAR/accuracy and its argmax agreement with the first backend:
the accuracy cost of FP16/INT8 against FP32/ONNX Runtime for the same weights. These are scores of the
artifact's own weights on the samples (a fit-all artifact has seen them all), not LOSO scores.
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
    parser.add_argument("--data", type=Path, help="composite data folder: also score every backend on its samples")
    parser.add_argument("--labels", type=Path, help="composite labels CSV (with --data)")


def _open(backend: str, args: argparse.Namespace):
    from engines.base import open_engine

    if backend == "ort":
        return open_engine(args.artifact, backend="ort", threads=args.threads)
    return open_engine(args.artifact, backend="trt", precision=args.precision, calib_dir=args.calib)


def _dataset_inputs(meta, data: Path, labels: Path):
    """The artifact's inputs for every composite sample, made by the trainer's own preparation."""
    from trainer.data.megc2019 import load_megc2019
    from trainer.models.registry import get_family
    from trainer.train import prepare_inputs

    samples = load_megc2019(data, labels)
    return samples, prepare_inputs(get_family(meta.family), samples)


def _score(engine, samples, arrays) -> tuple[dict, "object"]:
    import numpy as np

    from trainer.metrics import pooled_scores

    names = list(arrays)
    predicted = np.array(
        [int(np.argmax(engine.infer({n: arrays[n][i : i + 1] for n in names})["probs"])) for i in range(len(samples))]
    )
    parts = sorted(set(samples.datasets))
    return pooled_scores(samples.labels, predicted, samples.datasets, len(samples.classes), parts), predicted


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from engines import default_artifact_path
    from engines.errors import MestreamError

    if (args.data is None) != (args.labels is None):
        raise MestreamError("--data and --labels go together (the composite folder and its labels CSV)")
    if args.iterations < 1 or args.warmup < 0:
        raise MestreamError(f"-n {args.iterations} / --warmup {args.warmup}: expected -n >= 1 and --warmup >= 0")
    if args.threads < 0:
        raise MestreamError(f"--threads {args.threads}: expected ONNX Runtime intra-op threads >= 0 (0 = its own pool, one per core)")
    args.artifact = args.artifact or default_artifact_path()
    backends = args.backend or ["ort"]
    if "trt" not in backends and (args.precision != "fp32" or args.calib is not None):
        # ONNX Runtime runs the artifact's FP32 graph: a silently ignored --precision would read as its cost
        raise MestreamError(f"--precision {args.precision} / --calib apply to TensorRT; add --backend trt, or drop them for ONNX Runtime")
    engines = {name: _open(name, args) for name in backends}
    try:
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
            label = name if name == "ort" else f"trt-{args.precision}"
            p50, p90, p99 = np.percentile(times, [50, 90, 99])
            print(f"{label:9s} n={args.iterations} p50 {p50:.3f} ms  p90 {p90:.3f} ms  p99 {p99:.3f} ms  "
                  f"mean {times.mean():.3f} ms  {1000.0 / times.mean():.0f} infer/s{agree}")
        if args.data is not None:
            samples, arrays = _dataset_inputs(meta, args.data, args.labels)
            first = None
            for name, engine in engines.items():
                scores, predicted = _score(engine, samples, arrays)
                label = name if name == "ort" else f"trt-{args.precision}"
                same = "" if first is None else f", argmax agrees with {backends[0]} on {float(np.mean(predicted == first)):.4f}"
                first = predicted if first is None else first
                full = scores["full"]
                print(f"{label:9s} on {len(samples)} samples (the artifact's own weights, not LOSO): "
                      f"UF1 {full['uf1']:.4f} UAR {full['uar']:.4f} acc {full['acc']:.4f}{same}")
    finally:
        for engine in engines.values():
            engine.close()
    return 0
