"""`mestream bench`: how fast the live pipeline runs on this machine, measured side by side.

    mestream bench --source $MESTREAM_ASSETS/videos/casme2_sub01_EP02_01f.avi --seconds 20 --json bench.json

On one source (looped, unpaced, frames scaled to 640 px wide) it measures each stage alone, the stages in
turn in one process and the real multi-process pipeline (edge/tools/bench.py says how). It prints a table,
writes JSON (--json) and a bar chart of per-stage fps (--png, default next to the JSON). With --soak it runs
the pipeline paced instead and reports the memory of every process over time (edge/tools/soak.py).
Needs the [tools] extra.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from engines.files import atomic_write

HELP = "benchmark the pipeline: per-stage fps, one-process chain, multi-process fps, latency, CPU, memory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None, help="video file (default: $MESTREAM_ASSETS/videos/casme2_sub01_EP02_01f.avi)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the multi-process run (the other parts take about as long together)")
    parser.add_argument("--width", type=int, default=640, help="frames are scaled to this width at capture (0 = as recorded)")
    parser.add_argument("--artifact", type=Path, default=None, help="model artifact (default: the packaged one)")
    parser.add_argument("--topology", type=Path, default=None, help="topology TOML (default: the packaged one)")
    parser.add_argument("--action-units", default=None, metavar="default|off|PATH",
                        help="the action-unit model infer runs beside the classifier (overrides [stages.classify] action_units)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--png", type=Path, default=None, help="bar chart of per-stage fps (default: the --json path with .png)")
    parser.add_argument("--soak", action="store_true", help="instead: run the pipeline PACED at the source's own fps for --seconds and "
                        "report memory of every process over time (growth after warm-up), fps, latency, drops, restarts")


def _default_source() -> str:
    from engines.errors import MestreamError

    root = os.environ.get("MESTREAM_ASSETS")
    if not root:
        raise MestreamError("no --source given and MESTREAM_ASSETS is not set; pass --source VIDEO (640x480 for the reference figures)")
    return str(Path(root) / "videos" / "casme2_sub01_EP02_01f.avi")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edge.tools import require_tools

    require_tools()
    from edge.process import RunOptions
    from edge.supervisor import preflight
    from edge.tools.progress import TimedProgress, show_progress
    from edge.topology import load_topology
    from engines.errors import MestreamError

    if args.seconds <= 0 or args.width < 0:
        raise MestreamError(f"--seconds {args.seconds} / --width {args.width}: expected a positive duration and a width >= 0")
    for out in (args.json, args.png):
        if out is not None and not out.parent.is_dir():
            raise MestreamError(f"{out}: folder {out.parent} does not exist; create it first")
    source = args.source or _default_source()
    from edge.stages.action_units import with_action_units

    topo = with_action_units(load_topology(args.topology), getattr(args, "action_units", None))
    capture_opts = dict(topo.stage_options.get("capture", {}), max_width=args.width, repeat=100000)
    topo = replace(topo, stage_options={**topo.stage_options, "capture": capture_opts})
    import socket

    with socket.socket() as probe:  # a free loopback port for this run's results
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_opts = RunOptions(source=source, artifact=str(args.artifact) if args.artifact else "", fast=True,
                          publish=replace(topo.publish, endpoint=f"tcp://127.0.0.1:{port}"))
    if args.soak:
        from edge.tools.soak import soak, soak_chart, soak_report

        run_opts = preflight(topo, replace(run_opts, fast=False))
        with TimedProgress(args.seconds + 5, enabled=show_progress(args)) as bar:
            bar.phase(f"soak: {args.seconds:g} s paced at the source's frame rate")
            result = {"source": source, "width": args.width, **soak(topo, run_opts, args.seconds)}
        print(soak_report(result))
        if args.json is not None:
            atomic_write(args.json, json.dumps(result, indent=2))
        png = args.png or (args.json.with_suffix(".png") if args.json is not None else None)
        if png is not None:
            soak_chart(result, png)
        return 0
    run_opts = preflight(topo, run_opts)
    load_at_start = list(os.getloadavg())
    from edge.tools.bench import TARGETS, chart, multi_process, one_process_chain, solo_stages, table

    # the three parts take about 2.5 x --seconds plus start-ups (MediaPipe, processes)
    with TimedProgress(2.5 * args.seconds + 10, enabled=show_progress(args)) as bar:
        bar.phase("bench 1/3 each stage alone")
        solo = solo_stages(topo, run_opts, args.seconds)
        bar.phase("bench 2/3 one process, stages in turn")
        chain = one_process_chain(topo, run_opts, args.seconds / 2)
        bar.phase("bench 3/3 multi-process pipeline")
        mp = multi_process(topo, run_opts, args.seconds)
    slowest = min(solo[n]["fps"] for n in ("capture", "track", "spot") if n in solo)
    result = {
        "source": source, "width": args.width, "seconds": args.seconds, "cpu_count": os.cpu_count(), "load_average": load_at_start,
        "solo": solo, "one_process": chain, "multi_process": mp,
        "slowest_stage_fps": slowest, "ratio_to_slowest": mp["fps"] / slowest,
    }
    lat = mp["latency_ms"]
    result["targets_met"] = {
        "e2e_fps": mp["fps"] >= TARGETS["e2e_fps"],
        "ratio_to_slowest": result["ratio_to_slowest"] >= TARGETS["ratio_to_slowest"],
        "latency_p95_ms": bool(lat["events"]) and lat["p95"] <= TARGETS["latency_p95_ms"],
        "total_rss_mb": mp["total_peak_rss_mb"] <= TARGETS["total_rss_mb"],
    }
    print(table(result))
    if args.json is not None:
        atomic_write(args.json, json.dumps(result, indent=2))
    png = args.png or (args.json.with_suffix(".png") if args.json is not None else None)
    if png is not None:
        chart(result, png)
    return 0
