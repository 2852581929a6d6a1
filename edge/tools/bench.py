"""The pipeline's speed, measured side by side: each stage alone, the stages in turn in one process, and
the real multi-process pipeline (`mestream bench`, edge/commands/bench.py).

1. each stage alone, in this process: capture, track, spot (frames per second) and infer (events per second);
   the per-frame stages on one OpenCV thread, as the pipeline runs them (edge/supervisor.py SINGLE_THREAD_ENV):
   OpenCV's pool made spot alone slower (610 fps on 1.9 cores against about 900 on one thread, DIS on
   64x64 crops is too small to split) and would credit a stage with a second core it never gets;
2. the same stages one after the other in ONE process (run_chain), the no-ZeroMQ baseline;
3. the real multi-process pipeline (supervisor, ipc, --fast so nothing is dropped): sustained fps at the
   last per-frame stage after a warm-up, drops, offset-to-result latency p50/p95/max of published events
   (collected by a subscriber), CPU share and peak RSS of every process.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

TARGETS = {"e2e_fps": 200.0, "ratio_to_slowest": 0.8, "latency_p95_ms": 150.0, "total_rss_mb": 1536.0}

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
    with supervised(sup, run, settle_s=0.3) as (runner, latencies):
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

    from edge.tools.plots import save_png

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
    save_png(fig, path, dpi=100)
    plt.close(fig)


@contextlib.contextmanager
def supervised(sup, run, settle_s: float = 0.0):
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
