"""Offset->result latency with speculative classification on and off, side by side in one run.

    .venv/bin/python benchmarks/speculation_latency.py --source /tmp/s200.avi --seconds 20 --rounds 2 --json out.json

The real multi-process pipeline (as `mestream bench` part 3: supervisor, ipc, unpaced --fast, frames 640 px
wide, the source looped) runs `--rounds` times with [stages.classify] speculate = true and as often with
speculate = false, alternating (on, off, off, on, ...) so that the machine's load falls on both alike. A
subscriber takes every published event's offset_to_result; p50/p95/max are pooled per variant. With
speculate = false the spotter still sends its candidates and infer drops them on arrival, so "off" is the
non-speculative path plus the cost of receiving them.

`--replay-frames N` also tracks the first N frames once and replays them through spot and classify in this
process: how many intervals found their candidate (hits), how many were scored on arrival (misses), how
many candidates went unused, and how many frames before the offset each candidate came (the lead time
infer has to finish the flow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _percentiles(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    if not a.size:
        return {"events": 0}
    return {"events": int(a.size), "p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1)}


def breakdown(record: Path) -> dict:
    """Medians over the recorded events: how long the offset frame took to reach the end of spot (capture,
    track and spot, queue waits included: a host's stamp runs from its entrance to its exit), and the rest
    (infer's queue, flow and engine unless speculated, publish)."""
    lines = record.read_text().splitlines() if record.is_file() else []
    events = [e for e in map(json.loads, filter(None, lines)) if e.get("schema") == "mestream.event"]
    shutil.rmtree(record.parent, ignore_errors=True)
    if not events:
        return {}
    lat = [e["latency_ms"] for e in events]
    to_spot = [sum(x.get(k, 0.0) for k in ("capture", "track", "spot")) for x in lat]
    rest = [x["offset_to_result"] - t for x, t in zip(lat, to_spot)]
    med = lambda v: round(float(np.median(v)), 1)  # noqa: E731
    return {"offset_to_end_of_spot": med(to_spot), "after_spot": med(rest), "track": med([x.get("track", 0.0) for x in lat]),
            "flow": med([x.get("flow", 0.0) for x in lat])}


def pipeline_runs(source: str, seconds: float, rounds: int, width: int) -> dict:
    import socket

    from edge.process import RunOptions
    from edge.supervisor import preflight
    from edge.tools.bench import multi_process
    from edge.topology import load_topology

    base = load_topology()
    runs = []
    order = []
    for r in range(rounds):
        order += [True, False] if r % 2 == 0 else [False, True]
    for speculate in order:
        stages = dict(base.stage_options)
        stages["capture"] = dict(stages.get("capture", {}), max_width=width, repeat=100000)
        stages["classify"] = dict(stages.get("classify", {}), speculate=speculate)
        topo = replace(base, stage_options=stages)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        record = Path(tempfile.mkdtemp(prefix="mestream-spec-")) / "events.jsonl"
        run = preflight(topo, RunOptions(source=source, fast=True, record=str(record),
                                         publish=replace(topo.publish, endpoint=f"tcp://127.0.0.1:{port}")))
        load_before = os.getloadavg()[0]
        c0 = time.process_time()
        mp = multi_process(topo, run, seconds)
        runs.append({"speculate": speculate, "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
                     "fps": round(mp["fps"], 1), "latency_ms": mp["latency_ms"], "latencies": mp["latencies_ms"],
                     "infer_cpu_pct": mp["processes"].get("infer", {}).get("cpu_pct"), "drops": mp["drops"],
                     "bench_process_cpu_s": round(time.process_time() - c0, 2)})
        runs[-1]["breakdown_ms"] = breakdown(record)
        lat = mp["latency_ms"]
        print(f"speculate={str(speculate).lower():<5} fps {mp['fps']:6.1f}  events {lat['events']:3d}  "
              + (f"p50 {lat['p50']:6.0f}  p95 {lat['p95']:6.0f}  max {lat['max']:6.0f} ms" if lat["events"] else "no events")
              + f"  (load {load_before:.2f} -> {os.getloadavg()[0]:.2f}); medians {runs[-1]['breakdown_ms']}", flush=True)
    return {"runs": runs}


def replay(source: str, frames: int, width: int, fracs: tuple[float, ...]) -> dict:
    """Track once, then spot + classify in this process: hits, misses, unused candidates, lead frames."""
    from edge.spotting import regional
    from edge.spotting.params import SpotParams
    from edge.stages.base import run_chain
    from edge.stages.capture import Capture, CaptureOptions
    from edge.stages.classify import Classify
    from edge.stages.face_tracking import FaceTracking
    from engines import default_artifact_path

    class _Limit:
        """Capture, stopped after `frames` frames."""

        def __init__(self, inner, n):
            self.inner, self.n, self.name = inner, n, inner.name

        def open(self):
            self.inner.open()

        def close(self):
            self.inner.close()

        def read(self):
            if self.n <= 0:
                return None
            self.n -= 1
            return self.inner.read()

    capture = Capture(source, fast=True, options=CaptureOptions(max_width=width))
    faces = [m for m in run_chain(_Limit(capture, frames), [FaceTracking()]) if m.topic == "face"]
    out = {"frames": len(faces), "candidate_frac": {}}
    for frac in fracs:
        spot = regional.RegionalSpotter(SpotParams(candidate_frac=frac))
        spot.open()
        classify = Classify(default_artifact_path())
        classify.open()
        lead, after = [], []
        sent_at: dict[tuple, int] = {}
        for face in faces:
            for m in spot.process(face):
                key = (m.header["onset"]["seq"], m.header["apex"]["seq"])
                if m.topic == "candidate":
                    sent_at[key] = int(face.header["seq"])
                elif m.topic == "interval":
                    # frames between the offset and the frame whose arrival closed the interval: a
                    # floor of offset->result that no speculation removes
                    after.append(int(face.header["seq"]) - int(m.header["offset"]["seq"]))
                    if key in sent_at:
                        lead.append(int(m.header["offset"]["seq"]) - sent_at[key])
                classify.process(m)
        spot.close()
        cache = classify.speculated
        classify.close()
        out["candidate_frac"][str(frac)] = {
            "hits": cache.hits, "misses": cache.misses, "unused_candidates": cache.wasted + len(cache),
            "lead_frames": _percentiles(lead) | {"min": int(min(lead)) if lead else None},
            "interval_sent_frames_after_offset": sorted(after)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="video file (e.g. a `mestream synth --fps 200` video)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each pipeline run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant (alternating)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--replay-frames", type=int, default=0, help="also replay this many frames in-process for hit counts")
    parser.add_argument("--fracs", type=float, nargs="+", default=[0.7], help="candidate fractions of the peak to replay")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {"source": args.source, "seconds": args.seconds, "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if args.replay_frames:
        result["replay"] = replay(args.source, args.replay_frames, args.width, tuple(args.fracs))
        print("replay:", json.dumps(result["replay"]), flush=True)
    result.update(pipeline_runs(args.source, args.seconds, args.rounds, args.width))
    pooled = {}
    for speculate in (True, False):
        lat = [v for r in result["runs"] if r["speculate"] is speculate for v in r["latencies"]]
        pooled["on" if speculate else "off"] = _percentiles(lat)
    result["pooled_latency_ms"] = pooled
    print(f"pooled offset->result latency, speculation on : {pooled['on']}")
    print(f"pooled offset->result latency, speculation off: {pooled['off']}")
    if args.json is not None:
        from engines.files import atomic_write

        atomic_write(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
