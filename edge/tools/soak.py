"""`mestream bench --soak`: the pipeline paced at the source's rate for a long time, and the memory of every
process over it (growth after warm-up), with fps, latency, drops and restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge.tools.bench import supervised

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

    def last_count(self, name: str) -> int:
        """The last tick's value of a count column (drops, lost, restarts); 0 before any tick or when unknown."""
        import numpy as np

        value = self.data[self.rows - 1, self.columns.index(name)] if self.rows else np.nan
        return 0 if np.isnan(value) else int(value)

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
    with supervised(sup, run) as (runner, latencies):
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
        fps = record.column(f"{name}.fps")[warm:]
        report[name] = {
            **memory_growth(record.column(f"{name}.rss_mb")[warm:]),
            "rss_growth_pct_after_10pct": memory_growth(record.column(f"{name}.rss_mb")[plain:])["rss_growth_pct"],
            "fps_mean": round(float(np.nanmean(fps)), 1) if fps.size and not np.isnan(fps).all() else 0.0,
            **{count: record.last_count(f"{name}.{count}") for count in ("drops", "lost", "restarts")},
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

    from edge.tools.plots import save_png

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
    save_png(fig, path, dpi=100)
    plt.close(fig)


def soak_report(result: dict) -> str:
    """The soak's table: one row per process, then latency."""
    lat = result["latency_ms"]
    loads = [s["load_1min"] for s in result["series"]]
    lines = [
        f"soak {result['seconds']:g} s on {os.cpu_count()} cores, load average (1 min) median {_median(loads)} max {max(loads, default=0):g}",
        f"RSS growth after {result['warmup_s']:g} s of warm-up (first event at {result['first_event_s']} s): {result['growth_measure']}",
        f"{'process':<12}{'fps':>8}{'RSS MB start':>14}{'end':>8}{'max':>8}{'growth %':>10}{'max %':>8}{'at 10% %':>10}{'drops':>7}{'lost':>6}{'restarts':>9}{'busy p95 ms':>12}",
    ]
    for name, p in result["processes"].items():
        lines.append(f"{name:<12}{p['fps_mean']:>8.1f}{p['rss_mb_start'] or 0:>14.1f}{p['rss_mb_end'] or 0:>8.1f}{p['rss_mb_max'] or 0:>8.1f}"
                     f"{p['rss_growth_pct'] or 0:>10.2f}{p['rss_max_over_start_pct'] or 0:>8.2f}{p['rss_growth_pct_after_10pct'] or 0:>10.2f}{p['drops']:>7}{p['lost']:>6}{p['restarts']:>9}{p['busy_p95_ms_median'] or 0:>12.2f}")
    lines.append(f"offset->result latency over {lat['events']} events" + (f": p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms" if lat["events"] else ""))
    return "\n".join(lines)
