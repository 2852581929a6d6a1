"""What re-cutting the crops to the artifact's crop_window costs the classify stage, per event.

    python benchmarks/classify_input_cost.py --prep-dir PREP [--artifact A.onnx] [--baseline B.onnx] [-n 40]

Runs the CPU classify stage (edge/stages/classify.py, speculation off so every interval is computed when it
comes) on real aligned onset/apex crops from a `mestream prep` cache, alternating between the two artifacts
(interleaved, so machine load hits both alike), and prints the p50/p95 of process() per interval and of the
re-cut alone. For when `mestream bench`'s offset->result latency cannot be read (a loaded machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.messages import Message  # noqa: E402
from edge.perception.composite_framing import COMPOSITE_WINDOW, reframe  # noqa: E402
from edge.stages.classify import Classify, ClassifyOptions  # noqa: E402
from engines import default_artifact_path  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prep-dir", type=Path, required=True)
    parser.add_argument("--artifact", type=Path, default=default_artifact_path())
    parser.add_argument("--baseline", type=Path, required=True, help="the same model without crop_window")
    parser.add_argument("-n", type=int, default=40, help="intervals per artifact")
    args = parser.parse_args()
    pairs = []
    for path in sorted(args.prep_dir.glob("*/*.npz"))[: args.n]:
        with np.load(path) as d:
            pairs.append((d["onset_crop"], d["apex_crop"]))
    if not pairs:
        print(f"no prepared clip in {args.prep_dir}")
        return 1
    stages = {name: Classify(path, options=ClassifyOptions(speculate=False))
              for name, path in (("baseline", args.baseline), ("crop_window", args.artifact))}
    times: dict[str, list[float]] = {name: [] for name in stages}
    for stage in stages.values():
        stage.open()
    try:
        for i, (onset, apex) in enumerate(pairs):
            header = {"onset": {"seq": i}, "apex": {"seq": i + 5}, "offset": {"seq": i + 9}, "score": 1.0}
            for name, stage in stages.items():
                t = time.perf_counter()
                stage.process(Message("interval", dict(header), {"onset": onset, "apex": apex}))
                times[name].append((time.perf_counter() - t) * 1e3)
    finally:
        for stage in stages.values():
            stage.close()
    cut = []
    for onset, apex in pairs:
        t = time.perf_counter()
        reframe(onset, COMPOSITE_WINDOW), reframe(apex, COMPOSITE_WINDOW)
        cut.append((time.perf_counter() - t) * 1e3)
    for name, ms in times.items():
        print(f"{name:12s} process() per interval: p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms (n {len(ms)})")
    print(f"re-cut of both crops alone: p50 {np.percentile(cut, 50):.3f} ms, p95 {np.percentile(cut, 95):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
