"""The supervisor: starts the pipeline's processes, watches their heartbeats, restarts the ones that die
or hang, and stops everything cleanly.

- Processes talk over ipc:// sockets in a private temporary folder (mode 0700), removed at the end.
- With several sources, each has its own capture | track | spot chain (plan_processes), all feeding the one
  infer process; a source's processes are restarted alone, and metrics are also given per source.
- Downstream processes start first; the source starts once they are all ready, so no frame is lost to
  start-up. Each child is its own session (terminal Ctrl-C reaches only us) and dies with us (PDEATHSIG).
- A child that exits, or is silent for hang_timeout_s, is (killed and) restarted after a backoff that
  doubles on every crash in a row (restart_backoff_min_s .. max_s) and resets once it has run
  stable_after_s. A file source resumes at the frame after the last one it reported. Every restart is
  published on me.status.
- A child that reports a user mistake ("fatal": no camera, bad artifact, port taken) stops the whole
  run with that one line. At end of stream every process drains and exits 0; then the run ends.
- stop() sends SIGTERM, waits stop_timeout_s, then SIGKILLs what is left: all gone within 3 s.

    sup = Supervisor(load_topology(), RunOptions(source="clip.mp4", artifact=...)); sup.start(); sup.run()
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import zmq

from edge import bus, shared_frames
from edge.messages import Message, status
from edge.nats_out import without_secret
from edge.process import EXIT_USER_ERROR, ProcessPlan, RunOptions
from edge.stages.capture import source_kind
from edge.topology import ProcessConfig, Topology
from engines.errors import MestreamError

log = logging.getLogger(__name__)


# A process that handles every frame runs its libraries on one thread: the pipeline already keeps one
# process per stage busy on every core, and the OpenCV pool (2 threads on 2 cores) spent more CPU than
# it saved on 48 px flows and 128 px warps: a worker woken for each small parallel_for, on a core another
# stage needed (spot: a fifth of its CPU time in a pool thread). The user's own settings win. The infer
# process keeps its pools: it works on rare events, where a parallel TV-L1 flow shortens the latency.
PER_FRAME_STAGES = frozenset({"capture", "track", "spot"})
SINGLE_THREAD_ENV = ("OPENCV_FOR_THREADS_NUM", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass
class Child:
    plan: ProcessPlan
    popen: subprocess.Popen | None = None
    started: float = 0.0
    last_hb: float = 0.0
    state: str = "waiting"  # waiting | starting | ready | running | blocked | done | fatal | restarting
    restarts: int = 0
    crashes_in_row: int = 0
    next_start: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    done: bool = False

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def reads_source(self) -> bool:
        """Whether it is a source's first process (it starts last, once everything downstream is ready)."""
        return not self.plan.input

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def child_env(plan: ProcessPlan, environ, log_level: str) -> dict[str, str]:
    """The environment a stage process starts with: ours, its log level, quiet MediaPipe start-up unless
    debugging, and single-threaded libraries where it handles every frame (PER_FRAME_STAGES)."""
    env = dict(environ, MESTREAM_LOG_LEVEL=log_level)
    if log_level != "DEBUG":
        # glog/TensorFlow builds read these; MediaPipe 0.10.21 logs through absl and ignores them, so
        # its chatter is filtered off the stderr the stages inherit instead (edge/native_logs.py)
        env.setdefault("GLOG_minloglevel", "2")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if PER_FRAME_STAGES & set(plan.stages):
        env.update({var: env.get(var, "1") for var in SINGLE_THREAD_ENV})
    return env


@dataclass(frozen=True)
class Hop:
    """One process of the run before it is planned: its topology entry, the name it runs under, the run
    options it sees, its source's name ("" for a process all sources share) and its shared-frame prefix."""

    config: ProcessConfig
    name: str
    run: RunOptions
    source: str
    shm_prefix: str


def plan_processes(topo: Topology, run: RunOptions, workdir: Path, control: str, shm_prefix: str = "") -> list[ProcessPlan]:
    """One ProcessPlan per [[process]] and source, each wired to the next; --fast turns every entrance to "block".

    The leading processes that handle every frame (capture, track, spot) are a source's chain: with several
    sources each source gets its own, its processes named PROCESS-SOURCE, and every chain feeds the first
    shared process (infer), which ends once all of them have ended. With one source the names stay as in
    the topology. A chain's processes stamp their source's name on everything they send.

    With a shm_prefix (shared frames on, /dev/shm there), the source process sends its frames' pixels
    through a ring when the next process listens on our own ipc link (same host); not over a tcp input.
    With several sources each has a prefix of its own, so a restart removes only its own rings.
    """
    procs = topo.processes
    sources = run.all_sources()
    n_chain = max(1, chain_length(topo))
    several = len(sources) > 1
    if several:
        for p in procs[:n_chain]:
            if p.input:
                raise MestreamError(f"topology process {p.name!r}: input = {p.input!r} cannot serve {len(sources)} sources, "
                                    "each with a chain of its own; leave input out (an ipc link per source)")
    shared = [Hop(p, p.name, run, "", shm_prefix) for p in procs[n_chain:]]
    plans = []
    for name, uri in sources:
        chain_run = replace(run, source=uri, source_name=name, sources=())
        prefix = f"{shm_prefix}{name}-" if shm_prefix and several else shm_prefix
        chain = [Hop(p, f"{p.name}-{name}" if several else p.name, chain_run, name, prefix) for p in procs[:n_chain]]
        line = chain + shared[:1]
        plans.extend(_plan(topo, hop, line[i + 1] if i + 1 < len(line) else None, i, workdir, 1) for i, hop in enumerate(chain))
    for j, hop in enumerate(shared):
        nxt = shared[j + 1] if j + 1 < len(shared) else None
        plans.append(_plan(topo, hop, nxt, n_chain + j, workdir, len(sources) if j == 0 else 1))
    return [replace(p, control=control) for p in plans]


def chain_length(topo: Topology) -> int:
    """How many leading processes make up one source's chain: those whose stages all handle every frame."""
    n = 0
    for p in topo.processes:
        if not set(p.stages) <= PER_FRAME_STAGES:
            break
        n += 1
    return n


def _plan(topo: Topology, hop: Hop, nxt: Hop | None, index: int, workdir: Path, upstreams: int) -> ProcessPlan:
    p, run = hop.config, hop.run
    policy = "block" if run.fast else p.policy
    next_policy = ("block" if run.fast else nxt.config.policy) if nxt else "block"
    # Towards a "drop" entrance the pipe must hold a whole queue: the next process only drains it
    # between messages, and the entrance (not a full pipe behind one slow frame) decides what to drop.
    output_hwm = (nxt.config.queue if next_policy == "drop" else nxt.config.hwm) if nxt else 1
    shared = bool(hop.shm_prefix) and index == 0 and nxt is not None and not nxt.config.input
    # Slots for every frame that can be in flight at the reader's pace (its queue, ZeroMQ's queues)
    # plus a few being decoded and handled: fewer and a blocking source waits on credits it need not,
    # a live one overwrites frames the reader would still have reached.
    slots = max(8, nxt.config.queue + nxt.config.hwm + output_hwm + 4) if shared else 0
    last = nxt is None and index == len(topo.processes) - 1
    return ProcessPlan(
        name=hop.name,
        stages=p.stages,
        stage_options={s: topo.stage_options.get(s, {}) for s in p.stages},
        input="" if index == 0 else _input(hop, workdir),
        output=_input(nxt, workdir) if nxt else "",
        control="",
        queue=p.queue,
        hwm=p.hwm,
        policy=policy,
        output_policy=next_policy,
        output_hwm=output_hwm,
        heartbeat_s=topo.runtime.heartbeat_s,
        run=run,
        preview=f"ipc://{workdir}/preview" if run.publish.preview and _previewed(run.publish.preview_sources, hop.source) else "",
        shm_out=hop.shm_prefix if shared else "",
        shm_slots=slots,
        shm_in=hop.shm_prefix if hop.shm_prefix and index == 1 and not p.input else "",
        final_status=index > 0 and last,
        nice=min(19, p.nice + (topo.runtime.fast_nice if run.fast and PER_FRAME_STAGES & set(p.stages) else 0)),
        source=hop.source,
        upstreams=upstreams,
    )


def _previewed(chosen: tuple[str, ...], source: str) -> bool:
    """Whether a process taps the preview: every process when no source is chosen, else the chosen sources'
    chains and the shared processes (their events and statuses are few; the viewer sorts them by source)."""
    return not chosen or not source or source in chosen


def _input(hop: Hop, workdir: Path) -> str:
    return hop.config.input or f"ipc://{workdir}/{hop.name}.in"


class Supervisor:
    def __init__(
        self,
        topo: Topology,
        run: RunOptions,
        *,
        on_tick: Callable[[str, dict[str, dict[str, Any]]], None] | None = None,
        log_level: str = "WARNING",
    ) -> None:
        self.topo = topo
        self.run_options = run
        self.on_tick = on_tick
        self.log_level = log_level
        self.stopping = False
        self.workdir: Path | None = None
        self.children: list[Child] = []
        self.ctx: zmq.Context | None = None
        self.control: zmq.Socket | None = None
        self.status_out: zmq.Socket | None = None
        self.preview_relay = None  # edge.preview.relay.PreviewRelay when the run publishes a preview
        self._last_tick = 0.0
        self.last_sources: dict[str, dict[str, Any]] = {}  # per-source metrics of the last tick (source_metrics)
        self._final_sent = False
        self.started_ns = 0
        self.ended_ns = 0
        self.shm_prefix = ""  # names of this run's shared-frame segments (edge/shared_frames.py); we remove them

    # -- start --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="mestream-"))
        os.chmod(self.workdir, 0o700)  # ipc sockets: only this user may connect
        self.ctx = zmq.Context()
        control = f"ipc://{self.workdir}/control"
        self.control = bus.open_socket(self.ctx, zmq.PULL, bind=control, hwm=1000, limits=bus.WireLimits(max_array_bytes=1 << 16, max_total_bytes=1 << 16))
        if self.topo.runtime.shared_frames and shared_frames.available():
            self.shm_prefix = f"mestream-{os.getpid()}-{secrets.token_hex(4)}-"
        plans = plan_processes(self.topo, self.run_options, self.workdir, control, self.shm_prefix)
        if self.run_options.publish.preview:
            from edge.preview.relay import PreviewRelay

            self.preview_relay = PreviewRelay(self.ctx, f"ipc://{self.workdir}/preview", self.run_options.publish.preview)
        self.children = [Child(p) for p in plans]
        last = plans[-1]
        if last.input:
            self.status_out = bus.open_socket(self.ctx, zmq.PUSH, connect=last.input, hwm=100)
        self.started_ns = time.monotonic_ns()
        for child in self.children:  # downstream first: the sources wait until they are ready
            if not child.reads_source:
                self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.popen = subprocess.Popen(
            [sys.executable, "-m", "edge.process", child.plan.to_json(), str(os.getpid())],
            env=child_env(child.plan, os.environ, self.log_level),
            start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only; it stops the rest
            stdin=subprocess.DEVNULL,
        )
        now = time.monotonic()
        child.started = child.last_hb = now
        child.state = "starting"
        child.next_start = None

    # -- the watch loop -----------------------------------------------------------------------------
    def run(self) -> int:
        """Watch until every process has drained (0), a user mistake stops the run, or stop is asked."""
        try:
            while not self.stopping:
                self._read_heartbeats(timeout_ms=100)
                now = time.monotonic()
                waiting = [c for c in self.children if c.reads_source and c.state == "waiting"]
                if waiting and all(c.state in ("ready", "running", "blocked") for c in self.children if not c.reads_source):
                    for source in waiting:
                        self._spawn(source)
                for child in self.children:
                    self._watch(child, now)
                if now - self._last_tick >= self.topo.runtime.status_every_s:
                    self._tick(now)
                if all(c.done for c in self.children):
                    self.ended_ns = time.monotonic_ns()
                    self._tick(time.monotonic(), publish=not self._final_sent)
                    return 0
            return 130
        finally:
            self.stop()

    def _read_heartbeats(self, timeout_ms: int) -> None:
        if not self.control.poll(timeout_ms):
            return
        final_due = False
        for _ in range(1000):
            try:
                parts = bus.recv_parts(self.control, bus.WireLimits())
                if parts is None:
                    break
                msg = bus.decode(parts)
            except bus.BadMessage:
                continue  # only our children can reach this socket; a bad one is not worth dying for
            child = next((c for c in self.children if c.name == msg.header.get("process")), None)
            if child is None or child.popen is None or msg.header.get("pid") != child.popen.pid:
                continue  # a late heartbeat from a previous incarnation
            child.last_hb = time.monotonic()
            child.state = str(msg.header.get("state"))
            child.metrics = msg.header
            final_due = final_due or (child.state == "finishing" and child is self.children[-1])
            if child.state == "fatal":
                raise MestreamError(str(msg.header.get("error", f"process {child.name} failed")))
        if final_due and not self._final_sent:
            # The status sink has the whole stream and waits for this; after the batch, so that the other
            # processes' last counts (sent before their "eos") are in it.
            self._final_sent = True
            self._tick(time.monotonic(), final=True)

    def _watch(self, child: Child, now: float) -> None:
        if child.done or child.state == "waiting":
            return
        if child.next_start is not None:
            if now >= child.next_start:
                self._spawn(child)
            return
        code = child.popen.poll()
        if code is None:
            limit = self.topo.runtime.startup_timeout_s if child.state == "starting" else self.topo.runtime.hang_timeout_s
            if now - child.last_hb > limit:
                log.warning("%s: no heartbeat for %.1f s; killing it", child.name, now - child.last_hb)
                child.popen.kill()
                child.popen.wait()
                self._restart(child, now, f"hung (no heartbeat for {now - child.last_hb:.1f} s)")
            return
        if code == 0 and child.state == "done":
            child.done = True
            return
        if code == EXIT_USER_ERROR or child.state == "fatal":
            self._read_heartbeats(timeout_ms=300)  # the fatal line may still be on its way
            raise MestreamError(f"process {child.name} stopped on a user error (exit {code}); run with -v for details")
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self._restart(child, now, reason)

    def _restart(self, child: Child, now: float, reason: str) -> None:
        rt = self.topo.runtime
        if not child.reads_source and any(c.done for c in self._sources_upstream_of(child)):
            # An end-of-stream went down with it: nothing will ever drain it.
            raise MestreamError(f"process {child.name} {reason} after the source ended; the run cannot finish cleanly")
        ran = now - child.started
        child.crashes_in_row = 1 if ran >= rt.stable_after_s else child.crashes_in_row + 1
        delay = min(rt.restart_backoff_min_s * 2 ** (child.crashes_in_row - 1), rt.restart_backoff_max_s)
        child.restarts += 1
        child.state = "restarting"
        if child.reads_source and child.plan.shm_out:
            shared_frames.remove_segments(child.plan.shm_out)  # its ring died with it; the next one makes a new one
        child.next_start = now + delay
        if child.reads_source and source_kind(child.plan.run.source) == "file":
            # a file resumes after its last reported frame; a live source starts afresh and the next hop marks the gap
            child.plan = replace(child.plan, resume_seq=int(child.metrics.get("last_seq", -1)) + 1)
        log.warning("%s %s; restart %d in %.2f s", child.name, reason, child.restarts, delay)
        fields = {"source": child.plan.source} if child.plan.source else {}
        self.publish_status(status("supervisor", "restart", f"{child.name} {reason}; restarting in {delay:.2f} s",
                                   process=child.name, restarts=child.restarts, delay_s=round(delay, 3), **fields))

    def _sources_upstream_of(self, child: Child) -> list[Child]:
        """The source processes whose frames reach this one: its own chain's, or every source's for a shared one."""
        return [c for c in self.children if c.reads_source and (not child.plan.source or c.plan.source == child.plan.source)]

    def publish_status(self, msg: Message) -> None:
        if self.status_out is None:
            return
        try:
            bus.send(self.status_out, msg, zmq.NOBLOCK)
        except zmq.Again:
            pass  # the publisher is down or behind; status is best-effort, the pipeline never waits for it

    def metrics(self) -> dict[str, dict[str, Any]]:
        out = {}
        for c in self.children:
            m = dict(c.metrics)
            m["restarts"] = c.restarts
            m["state"] = "done" if c.done else c.state
            out[c.name] = m
        return out

    def _tick(self, now: float, *, final: bool = False, publish: bool = True) -> None:
        """Metrics on me.status; final=True marks the last one of a run that reached its end."""
        self._last_tick = now
        metrics = self.metrics()
        sources = source_metrics(self.children, metrics)
        line = status_line(metrics, sources if len(sources) > 1 else None)
        self.last_sources = sources
        if publish:
            self.publish_status(status("supervisor", "metrics", line, final=final, processes={
                k: {f: v.get(f) for f in ("state", "fps", "n_in", "drops", "lost", "restarts", "busy_ms", "result_ms", "cpu_s", "rss_mb")}
                for k, v in metrics.items()}, sources=sources))
        if self.on_tick is not None:
            self.on_tick(line, metrics)

    # -- stop ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """SIGTERM every child, SIGKILL after stop_timeout_s, close sockets, remove the ipc folder."""
        alive = [c for c in self.children if c.alive]
        for c in alive:
            try:
                c.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.topo.runtime.stop_timeout_s
        for c in alive:
            try:
                c.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.1f s; killing it", c.name, self.topo.runtime.stop_timeout_s)
                c.popen.kill()
                c.popen.wait()
        if self.preview_relay is not None:
            self.preview_relay.stop()
            self.preview_relay = None
        for sock in (self.control, self.status_out):
            if sock is not None:
                sock.close(0)
        self.control = self.status_out = None
        # The folder goes first: the children are gone, and should term() wait on a socket someone left
        # open, no socket file may stay behind in /tmp.
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self.shm_prefix:
            shared_frames.remove_segments(self.shm_prefix)  # a killed writer could not unlink its ring
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None


def source_metrics(children: list[Child], metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source: its last frame number, frames read per second, drops and lost frames (gaps no drop
    explains) along its chain, its chain's restarts and state, and its events' offset -> result latency."""
    out = {}
    for child in children:
        if not child.reads_source:
            continue
        name = child.plan.source
        chain = [c for c in children if c.plan.source == name]
        m = metrics[child.name]
        result = next((r[name] for v in metrics.values() if (r := v.get("result_ms_by_source") or {}).get(name)), {})
        out[name] = {
            "uri": without_secret(child.plan.run.source),  # an rtsp://user:password@ URL's password stays off the wire
            "state": m.get("state"),
            "frame": int(m.get("last_seq", -1) if m.get("last_seq") is not None else -1),
            "fps": m.get("fps", 0.0),
            "drops": sum(sum((metrics[c.name].get("drops") or {}).values()) for c in chain),
            "lost": sum(int(metrics[c.name].get("lost") or 0) for c in chain),
            "restarts": sum(c.restarts for c in chain),
            "result_ms": result,
        }
    return out


def status_line(metrics: dict[str, dict[str, Any]], sources: dict[str, dict[str, Any]] | None = None) -> str:
    """One line for people: fps per process, drops, latency, restarts. With several sources, one part per
    source (its fps, frame number, drops, restarts, latency) instead of its chain's processes."""
    chained = tuple(f"-{name}" for name in sources) if sources else ()
    parts = [_source_part(name, s) for name, s in (sources or {}).items()]
    parts += [process_part(name, m) for name, m in metrics.items() if not (chained and name.endswith(chained))]  # chains: in their source's part
    total_drops = sum(sum((m.get("drops") or {}).values()) + int(m.get("lost") or 0) for m in metrics.values())
    return " | ".join(parts) + f" | drops {total_drops}" + result_tail(metrics)


def process_part(name: str, m: dict[str, Any]) -> str:
    """'infer 2 fps 41.0 ms 1 restart(s) [blocked]': one process's fps, p95 busy time, restarts, odd state."""
    p95 = (m.get("busy_ms") or {}).get("p95")
    text = f"{name} {m.get('fps', 0):.0f} fps"
    if p95 is not None:
        text += f" {p95:.1f} ms"
    if m.get("restarts"):
        text += f" {m['restarts']} restart(s)"
    if m.get("state") not in ("running", "ready", "finishing", "done", None):
        text += f" [{m.get('state')}]"
    return text


def result_tail(metrics: dict[str, dict[str, Any]]) -> str:
    """' | offset->result p50 .. ms p95 .. ms' from the last process that measures it, or ''."""
    result = next((m.get("result_ms") for m in reversed(list(metrics.values())) if m.get("result_ms")), None)
    return f" | offset->result p50 {result['p50']:.0f} ms p95 {result['p95']:.0f} ms" if result else ""


def _source_part(name: str, s: dict[str, Any]) -> str:
    text = f"{name} {s['fps'] or 0:.0f} fps frame {s['frame']} drops {s['drops'] + s['lost']}"
    if s["restarts"]:
        text += f" {s['restarts']} restart(s)"
    if s["result_ms"]:
        text += f" p95 {s['result_ms']['p95']:.0f} ms"
    if s["state"] not in ("running", "ready", "finishing", "done", None):
        text += f" [{s['state']}]"
    return text


def preflight(topo: Topology, run: RunOptions) -> RunOptions:
    """Check everything a user can get wrong before any process starts; returns the completed options.

    Stage options are validated by building every stage; the artifact is read; the source is opened and
    closed; the publish endpoint is bound once and released. Each failure is one MestreamError line.
    """
    from edge.stages.registry import build_stage

    names = topo.stage_names()
    if run.publish.preview:
        from edge.preview.relay import check_preview_endpoint, check_preview_sources

        check_preview_endpoint(run.publish.preview)
        check_preview_sources(run.publish.preview_sources, [name for name, _ in run.all_sources()])
    if run.record:
        record = Path(run.record)
        if not record.parent.is_dir():
            raise MestreamError(f"--record {record}: folder {record.parent} does not exist; create it or choose another path")
    stages = [build_stage(s, topo.stage_options.get(s, {}), run) for s in names]
    for _name, uri in run.all_sources():  # every camera, stream and file opens, or the run does not start
        source = stages[0] if uri == run.source else build_stage(names[0], topo.stage_options.get(names[0], {}), replace(run, source=uri))
        source.open()
        source.close()
    if "publish" in names:
        bus.check_bind_endpoint(run.publish.endpoint, run.publish.allow_public)
        if run.publish.curve_secret_key:
            from edge.keys import read_allowed_clients, read_keypair

            read_keypair(Path(run.publish.curve_secret_key))
            read_allowed_clients(Path(run.publish.curve_clients))
        ctx = zmq.Context()
        try:
            sock = bus.open_socket(ctx, zmq.PUB, bind=run.publish.endpoint, allow_public=run.publish.allow_public)
            sock.close(0)
        finally:
            ctx.term()
    if "classify" in names:
        from engines import default_artifact_path, read_artifact

        artifact = Path(run.artifact) if run.artifact else default_artifact_path()
        if not artifact.is_file():
            raise MestreamError(f"artifact {artifact} does not exist; pass --artifact PATH to a .onnx made by `mestream export`")
        read_artifact(artifact)  # refuses anything that is not a mestream artifact, in one line
        colour = _check_engine_fits(artifact, topo.stage_options.get("classify", {}).get("action_units", "default"))
        # Colour crops are 48 KB more per frame between track and spot, and about 40 MB more memory in spot's
        # ring: sent only when the artifact reads the apex in colour or the preview shows the face.
        run = replace(run, artifact=str(artifact), color_crops=colour or bool(run.publish.preview))
    return run


def _check_engine_fits(artifact: Path, action_units: str = "default") -> bool:
    """Open the engine once on the CPU and plan its inputs: an artifact this runtime cannot feed (inputs it
    does not know, flow parameters of another version, metadata that contradicts the graph) is refused
    here in one line, not by the infer process after the other stages have started. Returns whether it
    reads the apex in colour."""
    from edge.stages.classify import Classify, ClassifyOptions
    from engines.base import open_engine

    stage = Classify(artifact, options=ClassifyOptions(action_units=str(action_units)),
                     engine_factory=lambda path: open_engine(path, backend="ort"))
    stage.open()
    try:
        return stage.wants_colour
    finally:
        stage.close()
