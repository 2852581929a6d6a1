"""What a stage process tells the supervisor: counters and timings (Meter), sent as heartbeats (Heartbeat).

Every heartbeat carries the process's state ("starting", "ready", "running", "blocked", "finishing",
"done", "fatal"), its counters, fps, processing-time percentiles, CPU time and memory. The supervisor
judges a process by its heartbeats: silence longer than hang_timeout_s is a hang.
"""

from __future__ import annotations

import os
import resource
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from edge import bus
from edge.messages import Message


class Meter:
    """Counters and a window of per-message processing times, reported in every heartbeat."""

    def __init__(self) -> None:
        self.n_in = 0
        self.n_out = 0
        self.first_in_ns = 0
        self.last_in_ns = 0
        self.busy_ns: deque[int] = deque(maxlen=512)
        self.results_ms: deque[float] = deque(maxlen=512)  # offset -> result latencies (publisher only)
        self.results_by_source: dict[str, deque[float]] = {}  # the same, per source name
        self._window_start = time.monotonic()
        self._window_in = 0

    def arrived(self, t_in: int) -> None:
        self.n_in += 1
        self.first_in_ns = self.first_in_ns or t_in
        self.last_in_ns = time.monotonic_ns()

    def result(self, ms: float, source: str = "") -> None:
        """One published event's offset -> result latency, counted for its source too."""
        self.results_ms.append(ms)
        if source:
            self.results_by_source.setdefault(source, deque(maxlen=512)).append(ms)

    def took(self, ns: int) -> None:
        self.busy_ns.append(ns)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        span = max(now - self._window_start, 1e-6)
        fps = (self.n_in - self._window_in) / span
        self._window_start, self._window_in = now, self.n_in
        busy = np.asarray(self.busy_ns, dtype=np.float64) / 1e6
        res = np.asarray(self.results_ms, dtype=np.float64)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "fps": round(fps, 2),
            "first_in_ns": self.first_in_ns,
            "last_in_ns": self.last_in_ns,
            "busy_ms": _percentiles(busy),
            "result_ms": _percentiles(res),
            "result_ms_by_source": {s: _percentiles(np.asarray(v, dtype=np.float64)) for s, v in self.results_by_source.items()},
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "rss_mb": round(rss_bytes() / 2**20, 1),
            "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
        }


class Heartbeat:
    """Sends "I am alive, in this state, with these counters" to the supervisor, at most every period_s
    unless forced. report() gives the counters of the moment."""

    def __init__(self, control: zmq.Socket, process: str, period_s: float, report: Callable[[], dict[str, Any]]) -> None:
        self.control = control
        self.process = process
        self.period_s = period_s
        self.report = report
        self._last = 0.0

    def __call__(self, state: str, force: bool = False, **extra: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.period_s:
            return
        self._last = now
        header = {"process": self.process, "pid": os.getpid(), "state": state, "t_ns": time.monotonic_ns(), **self.report(), **extra}
        try:
            bus.send(self.control, Message("heartbeat", header), zmq.NOBLOCK)
        except zmq.Again:
            pass  # the supervisor is busy or gone; it judges us by silence, never by a backlog


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not values.size:
        return {}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(float(values.max()), 3)}


def peak_rss_bytes() -> int:
    """VmHWM of this process image; ru_maxrss would carry the parent's peak across exec on Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
