"""`mestream bench`: how fast the live pipeline runs on this machine, measured side by side.

    mestream bench --source $MESTREAM_ASSETS/videos/casme2_sub01_EP02_01f.avi --seconds 20 --json bench.json

On one source (looped, unpaced, frames scaled to 640 px wide) it measures, in this order:
1. each stage alone, in this process: capture, track, spot (frames per second) and infer (events per second);
   the per-frame stages on one OpenCV thread, as the pipeline runs them (edge/supervisor.py SINGLE_THREAD_ENV):
   OpenCV's pool made spot alone slower (610 fps on 1.9 cores against about 900 on one thread, DIS on
   64x64 crops is too small to split) and would credit a stage with a second core it never gets;
2. the same stages one after the other in ONE process (run_chain), the no-ZeroMQ baseline;
3. the real multi-process pipeline (supervisor, ipc, --fast so nothing is dropped): sustained fps at the
   last per-frame stage after a warm-up, drops, offset-to-result latency p50/p95/max of published events
   (collected by a subscriber), CPU share and peak RSS of every process.
It prints a table, writes JSON (--json) and a bar chart of per-stage fps (--png, default next to the JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

HELP = "benchmark the pipeline: per-stage fps, one-process chain, multi-process fps, latency, CPU, memory"

TARGETS = {"e2e_fps": 200.0, "ratio_to_slowest": 0.8, "latency_p95_ms": 150.0, "total_rss_mb": 1536.0}


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


_CPU: dict[str, float] = {}  # stage -> CPU ms per call of the last _timed run (all threads of this process)


def _timed(fn, seconds: float, n_max: int, name: str = "") -> tuple[int, float]:
    """Call fn(i) until `seconds` pass or n_max calls; returns (calls, elapsed s). Also notes CPU ms per call,
    which, unlike wall time, does not depend on what else the machine is running."""
    import time

    t0 = time.perf_counter()
    c0 = time.process_time()
    i = 0
    while i < n_max and time.perf_counter() - t0 < seconds:
        fn(i)
        i += 1
    if name and i:
        _CPU[name] = 1000 * (time.process_time() - c0) / i
    return i, time.perf_counter() - t0


@contextlib.contextmanager
def pipeline_threads():
    """OpenCV's threads while a per-frame stage runs alone as in its pipeline process (one, unless the user's
    OPENCV_FOR_THREADS_NUM says otherwise, which the supervisor passes on too); restored after."""
    import cv2

    before = cv2.getNumThreads()
    wanted = os.environ.get("OPENCV_FOR_THREADS_NUM", "1")
    cv2.setNumThreads(int(wanted) if wanted.isdigit() else 1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def solo_stages(topo, run, seconds: float) -> dict:
    """Each stage alone on recorded inputs: capture reads; track eats frames; spot eats faces; infer eats intervals."""
    import time

    import numpy as np

    from edge.messages import Message
    from edge.process import build_stage

    opts = lambda name: topo.stage_options.get(name, {})  # noqa: E731
    results: dict[str, dict] = {}
    part = seconds / 4

    capture = build_stage("capture", opts("capture"), run)
    capture.open()
    frames: list[Message] = []

    def read(i):
        m = capture.read()
        if m is not None and len(frames) < 300:
            frames.append(m)

    with pipeline_threads():
        n, dt = _timed(read, part, 10**9, "capture")
    capture.close()
    results["capture"] = {"fps": n / dt, "frames": n, "cpu_ms_per_frame": _CPU.get("capture")}

    track = build_stage("track", opts("track"), run)
    track.open()
    faces: list[Message] = []

    def track_one(i):
        src = frames[i % len(frames)]
        m = Message("frame", {**src.header, "seq": i, "t_capture_ns": time.monotonic_ns()}, src.arrays)
        faces.extend(f for f in track.process(m) if f.topic == "face")

    with pipeline_threads():
        n, dt = _timed(track_one, part, 10**9, "track")
    track.close()
    results["track"] = {"fps": n / dt, "frames": n, "cpu_ms_per_frame": _CPU.get("track")}

    spot = build_stage("spot", opts("spot"), run)
    spot.open()
    intervals: list[Message] = []

    def spot_one(i):
        intervals.extend(m for m in spot.process(faces[i % len(faces)] if i < len(faces) else _renumber(faces, i)) if m.topic == "interval")

    with pipeline_threads():
        n, dt = _timed(spot_one, part, 10**9, "spot")
    stride = getattr(spot, "stride", 1)  # the learned spotter reads every frame
    spot.close()
    results["spot"] = {"fps": n / dt, "frames": n, "intervals": len(intervals), "cpu_ms_per_frame": _CPU.get("spot"),
                       "analyses_every": stride}

    if not intervals:  # nothing spotted in this clip: classify pairs of real aligned crops 5 frames apart
        found = [f for f in faces if f.header.get("found")]
        for a, b in zip(found[::7], found[5::7]):
            intervals.append(Message("interval", {"kind": "micro", "score": 1.0, "fps": 30.0, "box": a.header.get("box", [0, 0, 1, 1]),
                                                   "onset": {"seq": a.header["seq"], "t_capture_ns": a.header["t_capture_ns"]},
                                                   "apex": {"seq": b.header["seq"], "t_capture_ns": b.header["t_capture_ns"]},
                                                   "offset": {"seq": b.header["seq"], "t_capture_ns": b.header["t_capture_ns"]}},
                                     {"onset": a.arrays["crop"], "apex": b.arrays["crop"]}))
    if intervals:
        classify = build_stage("classify", opts("classify"), run)
        classify.open()
        took = []

        def infer_one(i):
            t = time.perf_counter()
            classify.process(intervals[i % len(intervals)])
            took.append(time.perf_counter() - t)

        n, dt = _timed(infer_one, part, 10**9, "infer")
        classify.close()
        results["infer"] = {"events_per_s": n / dt, "events": n, "ms_p50": float(np.median(took) * 1000), "ms_max": float(max(took) * 1000)}
    return results


def _renumber(faces, i):
    from edge.messages import Message

    src = faces[i % len(faces)]
    return Message(src.topic, {**src.header, "seq": i, "gap": 0}, src.arrays)


def one_process_chain(topo, run, seconds: float) -> dict:
    """capture -> track -> spot -> classify in this process, no sockets."""
    import time

    from edge.process import build_stage
    from edge.stages.base import feed

    names = [s for s in topo.stage_names() if s != "publish"]
    stages = [build_stage(s, topo.stage_options.get(s, {}), run) for s in names]
    for s in stages:
        s.open()
    try:
        source, rest = stages[0], stages[1:]
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            m = source.read()
            if m is None:
                break
            feed(rest, [m])
            n += 1
        dt = time.perf_counter() - t0
    finally:
        for s in reversed(stages):
            s.close()
    return {"fps": n / dt, "frames": n}


def multi_process(topo, run, seconds: float) -> dict:
    """The real pipeline under the supervisor; a subscriber collects events for latency."""
    import time

    import numpy as np

    from edge.supervisor import Supervisor

    samples: list[tuple[float, dict]] = []
    sup = Supervisor(topo, run, on_tick=lambda line, metrics: samples.append((time.monotonic(), metrics)))
    with _supervised(sup, run, settle_s=0.3) as (runner, latencies):
        t_start = time.monotonic()
        while runner.is_alive() and time.monotonic() - t_start < seconds + 60:
            running = [s for s in samples if s[1][sup.children[0].name].get("state") == "running"]
            if running and time.monotonic() - running[0][0] >= seconds:
                break
            time.sleep(0.2)
    # Sustained rate: the last per-frame process, from 2 s after the source started to the end.
    per_frame = [c.name for c in sup.children if any(s in ("capture", "track", "spot") for s in c.plan.stages)]
    last = per_frame[-1]
    live = [(t, m) for t, m in samples if m[sup.children[0].name].get("state") in ("running", "done")]
    if len(live) < 3:
        raise RuntimeError("the pipeline did not run long enough to measure; raise --seconds")
    t_first = live[0][0]
    window = [(t, m) for t, m in live if t >= t_first + 2.0] or live
    (ta, ma), (tb, mb) = window[0], window[-1]
    fps = (mb[last]["n_in"] - ma[last]["n_in"]) / max(tb - ta, 1e-6)
    final = live[-1][1]
    procs = {}
    for name, m in final.items():
        first = next((mm[name] for _, mm in window if mm[name].get("cpu_s") is not None), m)
        procs[name] = {
            "fps": round((mb[name]["n_in"] - ma[name]["n_in"]) / max(tb - ta, 1e-6), 1),
            "cpu_pct": round(100 * (m.get("cpu_s", 0) - first.get("cpu_s", 0)) / max(tb - ta, 1e-6), 1),
            "cpu_ms_per_frame": round(1000 * (m.get("cpu_s", 0) - first.get("cpu_s", 0)) / max(mb[last]["n_in"] - ma[last]["n_in"], 1), 3),
            "peak_rss_mb": m.get("peak_rss_mb"),
            "drops": sum((m.get("drops") or {}).values()) + int(m.get("lost") or 0),
            "busy_ms": m.get("busy_ms"),
            "restarts": m.get("restarts", 0),
        }
    lat = np.asarray(latencies, dtype=np.float64)
    cpu_ms = sum(p["cpu_ms_per_frame"] for p in procs.values())
    return {
        "fps": fps,
        "cpu_ms_per_frame": cpu_ms,
        "cpu_bound_fps": (os.cpu_count() or 1) * 1000 / max(cpu_ms, 1e-6),
        "window_s": tb - ta,
        "frames": mb[last]["n_in"],
        "latency_ms": {"events": int(lat.size), **({"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)), "max": float(lat.max())} if lat.size else {})},
        "latencies_ms": [round(float(v), 2) for v in lat],  # every event's, so runs can be pooled (benchmarks/speculation_latency.py)
        "drops": sum(p["drops"] for p in procs.values()),
        "total_peak_rss_mb": sum(p["peak_rss_mb"] or 0 for p in procs.values()),
        "processes": procs,
    }


SOAK_FIELDS = ("rss_mb", "fps", "n_in", "drops", "lost", "restarts", "busy_p95_ms")
SOAK_STATES = ("", "waiting", "starting", "ready", "running", "blocked", "done", "fatal", "restarting", "finishing")


class SoakRecord:
    """Every tick's figures of a soak in one float32 block filled up front, so that recording an hour
    does not itself grow the memory of the process it measures (the supervisor's, which also runs the
    bench): a list of per-tick dicts grew it by 5 MB in 30 minutes. When the block is full, every other
    row is dropped and from then on every other tick is kept (an hour at 1 tick/s fits without that)."""

    def __init__(self, names: list[str], ticks: int) -> None:
        import numpy as np

        self.names = names
        self.columns = ["t_s", "load_1min", "supervisor.rss_mb", *(f"{n}.{f}" for n in names for f in SOAK_FIELDS)]
        self.data = np.full((max(ticks, 16), len(self.columns)), np.nan, dtype=np.float32)  # np.full touches every page now
        self.states = np.zeros((len(self.data), len(names)), dtype=np.uint8)
        self.rows = 0
        self._stride = 1
        self._ticks = 0

    def add(self, t_s: float, load: float, supervisor_rss_mb: float, metrics: dict) -> None:
        self._ticks += 1
        if self._ticks % self._stride:
            return
        if self.rows == len(self.data):
            half = self.data[::2].copy(), self.states[::2].copy()
            self.rows = len(half[0])
            self.data[: self.rows], self.states[: self.rows] = half
            self.data[self.rows :] = float("nan")
            self._stride *= 2
        row = [t_s, load, supervisor_rss_mb]
        for i, name in enumerate(self.names):
            m = metrics.get(name, {})
            figures = {"rss_mb": m.get("rss_mb"), "fps": m.get("fps"), "n_in": m.get("n_in"), "lost": m.get("lost"),
                       "drops": sum((m.get("drops") or {}).values()), "restarts": m.get("restarts"),
                       "busy_p95_ms": (m.get("busy_ms") or {}).get("p95")}
            row += [float("nan") if figures[f] is None else float(figures[f]) for f in SOAK_FIELDS]
            state = m.get("state") or ""
            self.states[self.rows, i] = SOAK_STATES.index(state) if state in SOAK_STATES else 0
        self.data[self.rows] = row
        self.rows += 1

    def column(self, name: str):
        return self.data[: self.rows, self.columns.index(name)]

    def series(self) -> list[dict]:
        """The rows as JSON-ready dicts (built once, at the end)."""
        out = []
        for r in range(self.rows):
            row = dict(zip(self.columns, self.data[r].tolist()))
            entry = {"t_s": round(row["t_s"], 2), "load_1min": round(row["load_1min"], 2),
                     "supervisor": {"rss_mb": round(row["supervisor.rss_mb"], 1)}}
            for i, name in enumerate(self.names):
                entry[name] = {"state": SOAK_STATES[self.states[r, i]] or None,
                               **{f: (None if row[f"{name}.{f}"] != row[f"{name}.{f}"] else round(row[f"{name}.{f}"], 3)) for f in SOAK_FIELDS}}
            out.append(entry)
        return out


def memory_growth(rss_mb) -> dict:
    """Resident-memory growth over a run after its warm-up, measured so that one lucky or unlucky sample
    cannot decide it: the median of the last tenth of the samples against the median of the first tenth,
    and the largest sample against that same start."""
    import numpy as np

    v = np.asarray([x for x in rss_mb if x is not None and np.isfinite(x) and x > 0], dtype=np.float64)
    if v.size < 2:
        return {"rss_mb_start": None, "rss_mb_end": None, "rss_mb_max": None, "rss_growth_pct": None, "rss_max_over_start_pct": None}
    tenth = max(1, v.size // 10)
    start, end, top = float(np.median(v[:tenth])), float(np.median(v[-tenth:])), float(v.max())
    return {"rss_mb_start": round(start, 1), "rss_mb_end": round(end, 1), "rss_mb_max": round(top, 1),
            "rss_growth_pct": round(100 * (end - start) / start, 2), "rss_max_over_start_pct": round(100 * (top - start) / start, 2)}


def soak(topo, run, seconds: float) -> dict:
    """The pipeline paced at the source's rate (e.g. a 200 fps synth video, looped) for a long time.

    Warm-up lasts until every process has done its work once: the first 10% of the run, at least 30 s
    (every window filled), and at least 10 s past the first published event (the infer process sets up
    its flow buffers and ONNX Runtime arena at its first interval: a one-off step of 25 MB, which a
    loaded machine's gaps may put minutes into the run). Growth is memory_growth over the samples after
    it; the growth from the plain 10% warm-up is reported too (rss_growth_pct_after_10pct)."""
    import time

    import numpy as np

    from edge.process import _rss_bytes
    from edge.supervisor import Supervisor

    names = [p.name for p in topo.processes]
    record = SoakRecord(names, ticks=int(seconds / max(topo.runtime.status_every_s, 0.05) * 1.25) + 600)
    t0 = time.monotonic()

    def tick(line, metrics):
        # this process is the supervisor and the latency subscriber: its own memory is measured too
        record.add(time.monotonic() - t0, os.getloadavg()[0], _rss_bytes() / 2**20, metrics)

    sup = Supervisor(topo, run, on_tick=tick)
    with _supervised(sup, run) as (runner, latencies):
        first_event_s = None
        while runner.is_alive() and time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            if first_event_s is None and latencies:
                first_event_s = time.monotonic() - t0
    t_s = record.column("t_s")
    plain = int(np.searchsorted(t_s, max(30.0, 0.1 * seconds))) if record.rows else 0
    warm = int(np.searchsorted(t_s, max(30.0, 0.1 * seconds, (first_event_s or 0.0) + 10.0))) if record.rows else 0
    report = {}
    for name in names:
        last = record.data[record.rows - 1] if record.rows else None
        value = lambda f: (0 if last is None or np.isnan(last[record.columns.index(f"{name}.{f}")])  # noqa: E731
                           else int(last[record.columns.index(f"{name}.{f}")]))
        fps = record.column(f"{name}.fps")[warm:]
        report[name] = {
            **memory_growth(record.column(f"{name}.rss_mb")[warm:]),
            "rss_growth_pct_after_10pct": memory_growth(record.column(f"{name}.rss_mb")[plain:])["rss_growth_pct"],
            "fps_mean": round(float(np.nanmean(fps)), 1) if fps.size and not np.isnan(fps).all() else 0.0,
            "drops": value("drops"), "lost": value("lost"), "restarts": value("restarts"),
            "busy_p95_ms_median": _median([v for v in record.column(f"{name}.busy_p95_ms")[warm:].tolist() if v == v]),
        }
    report["supervisor"] = {**memory_growth(record.column("supervisor.rss_mb")[warm:]),
                            "rss_growth_pct_after_10pct": memory_growth(record.column("supervisor.rss_mb")[plain:])["rss_growth_pct"],
                            "fps_mean": 0.0, "drops": 0, "lost": 0, "restarts": 0, "busy_p95_ms_median": None}
    lat = np.asarray(latencies, dtype=np.float64)
    series = record.series()
    return {"seconds": round(time.monotonic() - t0, 1), "warmup_s": series[warm]["t_s"] if warm < len(series) else 0,
            "first_event_s": None if first_event_s is None else round(first_event_s, 1),
            "growth_measure": "median RSS of the last 10% of samples after warm-up vs the first 10%; max vs the same start",
            "processes": report,
            "latency_ms": {"events": int(lat.size), **({"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                                                        "max": float(lat.max())} if lat.size else {})},
            "series": series}


def _median(values) -> float | None:
    import numpy as np

    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 3) if values else None


def soak_chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name in result["processes"]:
        pts = [(s["t_s"], s[name]["rss_mb"]) for s in result["series"] if s.get(name, {}).get("rss_mb")]
        if pts:
            ax.plot(*zip(*pts), label=name)
    ax.axvline(result["warmup_s"], color="grey", linestyle=":", label="warm-up end")
    ax.set_xlabel("seconds")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title("mestream bench --soak: memory of every process")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def table(result: dict) -> str:
    solo = result["solo"]
    mp = result["multi_process"]
    lines = [f"source {result['source']} ({result['width']} px wide, unpaced, looped)", "",
             f"{'stage alone':<22}{'fps':>10}{'CPU ms/frame':>14}   (capture, track, spot on one OpenCV thread, as in the pipeline)"]
    for name in ("capture", "track", "spot"):
        if name in solo:
            every = solo[name].get("analyses_every", 1)
            note = f"   (analyses 1 frame in {every}: SpotParams.max_rate_hz)" if every > 1 else ""
            lines.append(f"{name:<22}{solo[name]['fps']:>10.1f}{solo[name].get('cpu_ms_per_frame') or 0:>14.2f}{note}")
    if "infer" in solo:
        lines.append(f"{'infer (events/s)':<22}{solo['infer']['events_per_s']:>10.2f}   p50 {solo['infer']['ms_p50']:.0f} ms per event")
    lines += ["", f"{'one process, in turn':<22}{result['one_process']['fps']:>10.1f}",
              f"{'multi-process (e2e)':<22}{mp['fps']:>10.1f}   = {result['ratio_to_slowest']:.2f} x slowest stage alone",
              "", f"{'process':<12}{'fps':>8}{'cpu %':>8}{'CPU ms/frame':>14}{'peak MB':>9}{'drops':>7}{'busy p95 ms':>13}"]
    for name, p in mp["processes"].items():
        lines.append(f"{name:<12}{p['fps']:>8.1f}{p['cpu_pct']:>8.1f}{p['cpu_ms_per_frame']:>14.2f}{p['peak_rss_mb'] or 0:>9.0f}{p['drops']:>7}{(p['busy_ms'] or {}).get('p95', 0):>13.1f}")
    lines.append(f"CPU cost {mp['cpu_ms_per_frame']:.2f} ms per frame over all processes: at most {mp['cpu_bound_fps']:.0f} fps on "
                 f"{result['cpu_count']} idle cores (inference from CPU time; wall-clock fps above depends on the machine's load, "
                 f"load average {result['load_average'][0]:.1f} at start)")
    lat = mp["latency_ms"]
    lines.append("")
    lines.append(f"offset->result latency over {lat['events']} events: " + (f"p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms" if lat["events"] else "no events published"))
    lines.append(f"total peak memory {mp['total_peak_rss_mb']:.0f} MB; drops {mp['drops']}")
    lines.append("")
    for key, ok in result["targets_met"].items():
        lines.append(f"target {key:<18} {TARGETS[key]:>8g}  {'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, values = [], []
    for name in ("capture", "track", "spot"):
        if name in result["solo"]:
            names.append(f"{name}\nalone")
            values.append(result["solo"][name]["fps"])
    names += ["one process\nin turn", "multi-process\nend to end"]
    values += [result["one_process"]["fps"], result["multi_process"]["fps"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, values, color=["#4c72b0"] * (len(names) - 2) + ["#dd8452", "#55a868"])
    ax.axhline(TARGETS["e2e_fps"], color="red", linestyle="--", label=f"target {TARGETS['e2e_fps']:g} fps")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom")
    ax.set_ylabel("frames per second")
    ax.set_title(f"mestream bench: {Path(result['source']).name}, {result['width']} px")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edge.process import RunOptions
    from edge.supervisor import preflight
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
        run_opts = preflight(topo, replace(run_opts, fast=False))
        from edge.progress import TimedProgress, show_progress

        with TimedProgress(args.seconds + 5, enabled=show_progress(args)) as bar:
            bar.phase(f"soak: {args.seconds:g} s paced at the source's frame rate")
            result = {"source": source, "width": args.width, **soak(topo, run_opts, args.seconds)}
        lat = result["latency_ms"]
        loads = [s["load_1min"] for s in result["series"]]
        print(f"soak {result['seconds']:g} s on {os.cpu_count()} cores, load average (1 min) median {_median(loads)} max {max(loads, default=0):g}")
        print(f"RSS growth after {result['warmup_s']:g} s of warm-up (first event at {result['first_event_s']} s): {result['growth_measure']}")
        print(f"{'process':<12}{'fps':>8}{'RSS MB start':>14}{'end':>8}{'max':>8}{'growth %':>10}{'max %':>8}{'at 10% %':>10}{'drops':>7}{'lost':>6}{'restarts':>9}{'busy p95 ms':>12}")
        for name, p in result["processes"].items():
            print(f"{name:<12}{p['fps_mean']:>8.1f}{p['rss_mb_start'] or 0:>14.1f}{p['rss_mb_end'] or 0:>8.1f}{p['rss_mb_max'] or 0:>8.1f}"
                  f"{p['rss_growth_pct'] or 0:>10.2f}{p['rss_max_over_start_pct'] or 0:>8.2f}{p['rss_growth_pct_after_10pct'] or 0:>10.2f}{p['drops']:>7}{p['lost']:>6}{p['restarts']:>9}{p['busy_p95_ms_median'] or 0:>12.2f}")
        print(f"offset->result latency over {lat['events']} events" + (f": p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms" if lat["events"] else ""))
        if args.json is not None:
            tmp = args.json.with_name(args.json.name + ".partial")
            tmp.write_text(json.dumps(result, indent=2))
            os.replace(tmp, args.json)
        png = args.png or (args.json.with_suffix(".png") if args.json is not None else None)
        if png is not None:
            soak_chart(result, png)
        return 0
    run_opts = preflight(topo, run_opts)
    load_at_start = list(os.getloadavg())
    from edge.progress import TimedProgress, show_progress

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
        tmp = args.json.with_name(args.json.name + ".partial")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, args.json)
    png = args.png or (args.json.with_suffix(".png") if args.json is not None else None)
    if png is not None:
        chart(result, png)
    return 0


@contextlib.contextmanager
def _supervised(sup, run, settle_s: float = 0.0):
    """Run `sup` in a thread while a SUB socket collects each event's offset-to-result latency.

    Yields (runner thread, latencies list); on exit the run is stopped and the listener closed.
    """
    import threading
    import time

    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.event")
    sub.connect(run.publish.endpoint)
    latencies: list[float] = []
    done = threading.Event()

    def listen():
        while not done.is_set():
            if sub.poll(100):
                latencies.append(json.loads(sub.recv_multipart()[1])["latency_ms"]["offset_to_result"])

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    sup.start()
    runner = threading.Thread(target=sup.run, daemon=True)
    runner.start()
    try:
        yield runner, latencies
    finally:
        sup.stopping = True
        runner.join(10)
        time.sleep(settle_s)  # let the last published events arrive before the listener stops
        done.set()
        listener.join(2)
        sub.close(0)
        ctx.term()
