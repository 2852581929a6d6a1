"""`mestream bench-flow`: TV-L1 accuracy on Middlebury and speed at 128x128, ours (CPU), OpenCV, CUDA.

One run measures side by side, with the same TVL1Params (edge/perception/flow.py):
- per Middlebury sequence ($MESTREAM_ASSETS/flow/<Seq>/frame10.png, frame11.png, flow10.flo): average
  end-point error over known pixels and time of our CPU reference, OpenCV's DualTVL1 (cv2.optflow, same
  parameters: innerIterations = iterations, outerIterations = 1, epsilon 0, no gamma) and the CUDA kernels
  when pycuda and a GPU are there;
- on real face pairs (centre crop of a face video, 128x128 grey, frame t -> t + gap): ms per pair of ours and
  of OpenCV, CUDA pairs/s batched (CUDA events around one launch sequence), the ratio CUDA / OpenCV, and
  the CUDA-vs-CPU parity (mean EPE, max |difference| of the recognition input).

    mestream bench-flow                         # table; assets from $MESTREAM_ASSETS
    mestream bench-flow --json out/flow.json    # also JSON for machines
    mestream bench-flow --cuda yes --batch 32,256  # fail unless the CUDA path runs
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from engines.errors import MestreamError
from engines.files import atomic_write

HELP = "benchmark TV-L1 flow: Middlebury EPE and 128x128 speed of ours (CPU), OpenCV DualTVL1 and CUDA"

SEQUENCES = ("RubberWhale", "Venus", "Dimetrodon", "Hydrangea")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assets", type=Path, default=None,
                        help="test material folder (default: $MESTREAM_ASSETS)")
    parser.add_argument("--sequences", default=",".join(SEQUENCES), help="comma-separated Middlebury sequences")
    parser.add_argument("--cuda", choices=("auto", "yes", "no"), default="auto",
                        help="run the CUDA kernels: auto = when pycuda and a GPU are there")
    parser.add_argument("--no-opencv", action="store_true", help="skip OpenCV's DualTVL1")
    parser.add_argument("--batch", default="16,64,256",
                        help="comma-separated pairs per CUDA launch sequence to time (the last is the headline)")
    parser.add_argument("--cpu-pairs", type=int, default=6, help="face pairs timed on the CPU (ours and OpenCV)")
    parser.add_argument("--repeat", type=int, default=10, help="timed CUDA batches")
    parser.add_argument("--gap", type=int, default=4, help="frames between the two frames of a face pair")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")


def run(args: argparse.Namespace) -> int:
    # no require_tools(): bench-flow draws no chart and shows no bar, so it runs without the [tools] extra
    # (benchmarks/gpu_flow.sh runs it on a GPU image that has neither)
    from edge.tools.bench_flow import batch_sizes, measure, print_table

    batch_sizes(args.batch)
    for flag, value in (("--cpu-pairs", args.cpu_pairs), ("--repeat", args.repeat), ("--gap", args.gap)):
        if value < 1:
            raise MestreamError(f"{flag} {value}: expected a whole number >= 1")
    root = args.assets or (Path(os.environ["MESTREAM_ASSETS"]) if os.environ.get("MESTREAM_ASSETS") else None)
    if root is None or not (root / "flow").is_dir():
        raise MestreamError(
            f"no Middlebury data under {root}/flow: pass --assets DIR or set MESTREAM_ASSETS to the test material"
        )
    result = measure(root, args)
    print_table(result)
    if args.json is not None:
        atomic_write(args.json, json.dumps(result, indent=2))
    return 0
