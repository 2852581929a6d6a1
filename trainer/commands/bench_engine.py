"""`mestream bench-engine`: engines' latency bench (engines/commands/bench_engine.py), plus accuracy.

    mestream bench-engine --artifact A.onnx --backend ort --backend trt --precision fp16
    mestream bench-engine --artifact A.onnx --data DIR --labels CSV     # also UF1/UAR/accuracy per backend

With `--data DIR --labels CSV` (the MEGC2019 composite) each backend also classifies every sample, prepared
the trainer's way, and prints UF1/UAR/accuracy and its argmax agreement with the first backend: the accuracy
cost of FP16/INT8 against FP32/ONNX Runtime for the same weights. These are scores of the artifact's own
weights on the samples (a fit-all artifact has seen them all), not LOSO scores. The accuracy mode lives in
the trainer because it prepares samples as training does; the timing stays in engines, which imports
neither edge nor trainer, so the job runs on a runtime-only install without --data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engines.commands import bench_engine as latency

HELP = latency.HELP + "; with --data/--labels also UF1/UAR/accuracy per backend"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    latency.add_arguments(parser)
    parser.add_argument("--data", type=Path, help="composite data folder: also score every backend on its samples")
    parser.add_argument("--labels", type=Path, help="composite labels CSV (with --data)")


def dataset_inputs(meta, data: Path, labels: Path):
    """The artifact's inputs for every composite sample, made by the trainer's own preparation."""
    from trainer.data.megc2019 import load_megc2019
    from trainer.models.registry import get_family
    from trainer.train import prepare_inputs

    samples = load_megc2019(data, labels)
    return samples, prepare_inputs(get_family(meta.family), samples)


def score(engine, samples, arrays) -> tuple[dict, object]:
    """Pooled scores of one engine's argmax over every sample, and the argmax itself."""
    import numpy as np

    from trainer.metrics import pooled_scores

    names = list(arrays)
    predicted = np.array(
        [int(np.argmax(engine.infer({n: arrays[n][i : i + 1] for n in names})["probs"])) for i in range(len(samples))]
    )
    parts = sorted(set(samples.datasets))
    return pooled_scores(samples.labels, predicted, samples.datasets, len(samples.classes), parts), predicted


def score_engines(args: argparse.Namespace, engines: dict) -> None:
    """One line per backend: UF1/UAR/accuracy on the composite and argmax agreement with the first."""
    import numpy as np

    backends = list(engines)
    meta = next(iter(engines.values())).meta
    samples, arrays = dataset_inputs(meta, args.data, args.labels)
    first = None
    for name, engine in engines.items():
        scores, predicted = score(engine, samples, arrays)
        same = "" if first is None else f", argmax agrees with {backends[0]} on {float(np.mean(predicted == first)):.4f}"
        first = predicted if first is None else first
        full = scores["full"]
        print(f"{latency.backend_label(name, args):9s} on {len(samples)} samples (the artifact's own weights, not LOSO): "
              f"UF1 {full['uf1']:.4f} UAR {full['uar']:.4f} acc {full['acc']:.4f}{same}")


def run(args: argparse.Namespace) -> int:
    from engines.errors import MestreamError

    if (args.data is None) != (args.labels is None):
        raise MestreamError("--data and --labels go together (the composite folder and its labels CSV)")
    latency.check_arguments(args)
    engines = latency.open_engines(args)
    try:
        latency.time_engines(args, engines)
        if args.data is not None:
            score_engines(args, engines)
    finally:
        latency.close_engines(engines)
    return 0
