"""Developer tools of the edge: what measures, tests or illustrates the runtime but is not part of it.

    bench.py        `mestream bench`: per-stage, one-process and multi-process speed of the pipeline
    soak.py         `mestream bench --soak`: memory of every process over a long paced run
    bench_flow.py   `mestream bench-flow`: TV-L1 accuracy (Middlebury) and speed, ours, OpenCV and CUDA
    track_bench.py  the track stage timed alone over frames in memory (benchmarks/tracking_policies.py)
    synth.py        `mestream synth`: spotting test videos with known events and their truth CSV
    spot_eval.py    `mestream spot-eval`: capture -> track -> spot on a video, scored against a truth CSV
    plots.py        pictures next to the JSON (per-subject bars of the trainer)
    progress.py     progress bars of long jobs
    nats_pair.py    a NATS hub and leaf node on loopback (tests and benchmarks/nats_fanin.py)

Charts and progress bars need the [tools] extra (matplotlib, tqdm); the runtime (`mestream run` and its
stages) never imports this package. Each tool job that draws or shows them calls require_tools() first, so
that a runtime-only install says in one line what to install instead of failing half-way with an ImportError.
"""

from __future__ import annotations

from engines.optional import require

# the [tools] extra of pyproject.toml, by import name
TOOLS_EXTRA_MODULES = ("matplotlib", "tqdm")


def require_tools() -> None:
    """Raise the one-line MestreamError naming the [tools] extra when one of its packages is missing."""
    for name in TOOLS_EXTRA_MODULES:
        require(name, "tools")
