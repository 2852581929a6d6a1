"""One OS process of the pipeline: a chain of stages between an input and an output socket.

The loop is receive -> process -> send. Beside it: the entrance (edge/entrance.py: policy, queue, checks,
the host's envelope and the sequence numbering), the outlet (edge/outlet.py: the next entrance's policy,
end of stream), the shared-memory ring ends (edge/ring_adapters.py) and the heartbeat to the supervisor
every `heartbeat_s` (edge/meter.py: counters, fps, latency, CPU, memory). Stages are built by name from the
registry (edge/stages/registry.py). SIGTERM/SIGINT stop the loop cleanly (stages closed, the record
flushed). At end of stream ("eos") every stage is flushed, "eos" is forwarded, and the process exits 0.

Started by edge/supervisor.py as `python -m edge.process PLAN_JSON`; never by hand.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from edge import bus
from edge.entrance import Entrance, Envelope, Numbering
from edge.messages import PER_FRAME_TOPICS, Message, end_of_stream
from edge.meter import Heartbeat, Meter
from edge.meter import rss_bytes as _rss_bytes  # noqa: F401 - edge/tools/soak.py reads it here until it imports edge.meter
from edge.outlet import Outlet
from edge.ring_adapters import RingIn, RingOut
from edge.stages.base import DecodesIntoSlots, drain, feed, takes_status
from edge.stages.registry import SOURCE_STAGES, build_stage
from edge.topology import PublishConfig
from engines.errors import MestreamError

log = logging.getLogger(__name__)

# Exit status of a process stopped by a user mistake (no camera, bad artifact, port taken): the supervisor
# stops the whole run with its one line instead of restarting it.
EXIT_USER_ERROR = 3


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for on the command line, shared by every process."""

    source: str
    artifact: str = ""
    fast: bool = False
    record: str = ""
    publish: PublishConfig = field(default_factory=PublishConfig)
    # Whether track sends colour crops when its topology table does not say: preflight turns this off when
    # nothing in this topology reads them (a flow-only artifact, no preview).
    color_crops: bool = True
    # Names this run in NATS message ids (edge/nats_out.py), the same in every process and across restarts.
    run_id: str = ""
    # The name of `source`: "source" on every message of its chain, its NATS subject token (edge/sources.py).
    source_name: str = "s0"
    # Every source of the run as (name, uri) pairs, each with its own capture | track | spot chain;
    # () = the one source above. A chain's processes get a copy with source/source_name set to theirs.
    sources: tuple[tuple[str, str], ...] = ()

    def all_sources(self) -> tuple[tuple[str, str], ...]:
        return self.sources or ((self.source_name, self.source),)


# At end of stream the status sink waits at most this long for the supervisor's final metrics, so that a
# run shorter than one status period still tells its subscribers how it went.
FINAL_STATUS_WAIT_S = 2.0


@dataclass(frozen=True)
class ProcessPlan:
    name: str
    stages: tuple[str, ...]
    stage_options: dict[str, dict[str, Any]]
    input: str  # endpoint this process binds ("" for the source process)
    output: str  # endpoint it connects to ("" for the last process)
    control: str  # the supervisor's heartbeat endpoint
    queue: int
    hwm: int
    policy: str  # entrance policy: "drop" | "block"
    output_policy: str  # the next process's policy: "drop" sends without waiting, "block" waits
    output_hwm: int  # SNDHWM towards the next process: a "drop" entrance gets room for a whole queue in flight
    heartbeat_s: float
    run: RunOptions
    resume_seq: int = 0  # a restarted file source continues from here instead of replaying the file
    preview: str = ""  # the supervisor's preview relay (ipc); "" = no preview tap in this process
    # Shared frames (edge/shared_frames.py): the segment-name prefix of this run. shm_out: this process
    # writes its "frame" pixels into a ring of shm_slots slots; shm_in: it reads references to such rings.
    shm_out: str = ""
    shm_slots: int = 0
    shm_in: str = ""
    nice: int = 0  # niceness added at start (topology [[process]] nice)
    final_status: bool = False  # the supervisor's status ends here: wait for its final metrics at end of stream
    source: str = ""  # the source's name this process's chain serves, stamped on what it sends; "" = shared by all
    upstreams: int = 1  # the ends of stream to wait for: one per source's chain feeding this process

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ProcessPlan:
        data = json.loads(text)
        run = data.pop("run")
        run["publish"] = PublishConfig(**run["publish"])
        run["sources"] = tuple(tuple(pair) for pair in run.get("sources", ()))
        data["stages"] = tuple(data["stages"])
        return cls(run=RunOptions(**run), **data)


class StageProcess:
    def __init__(self, plan: ProcessPlan, ctx: zmq.Context) -> None:
        self.plan = plan
        self.ctx = ctx
        self.drops = bus.DropLog(plan.name)
        self.meter = Meter()
        self.numbering = Numbering()
        self.stop = False
        self.finished = False
        self.ended: set[str] = set()  # the sources whose end of stream has come (plan.upstreams of them end the run)
        self.control = bus.open_socket(ctx, zmq.PUSH, connect=plan.control, hwm=100)
        self.heartbeat = Heartbeat(self.control, plan.name, plan.heartbeat_s, self._report)
        self.source = None
        self.stages: list = []
        self.entrance: Entrance | None = None
        self.outlet: Outlet | None = None
        self.preview = None  # edge.preview.tap.PreviewTap when the run asked for a preview
        self.ring_in = RingIn(plan.shm_in, self.drops) if plan.shm_in else None
        self.ring_out = RingOut(plan.shm_out, plan.shm_slots, block=plan.output_policy == "block",
                                wait=self.keep_waiting, process=plan.name) if plan.shm_out else None

    def _report(self) -> dict[str, Any]:
        shm_frames = sum(r.frames for r in (self.ring_in, self.ring_out) if r is not None)
        return {"drops": dict(self.drops.counts), "shm_frames": shm_frames, "lost": self.numbering.lost,
                "last_seq": self.numbering.last_seq, **self.meter.snapshot()}

    def keep_waiting(self, state: str = "blocked") -> bool:
        """While waiting on another process (a free slot, room in the pipe, its hang-up): say so, so the
        supervisor does not take it for a hang; False once we are asked to stop."""
        self.heartbeat(state)
        return not self.stop

    def open(self) -> None:
        self.heartbeat("starting", force=True)
        plan = self.plan
        built = [build_stage(s, plan.stage_options.get(s, {}), plan.run, plan.resume_seq) for s in plan.stages]
        self.source, self.stages = (built[0], built[1:]) if plan.stages[0] in SOURCE_STAGES else (None, built)
        for stage in built:
            stage.open()
        if self.ring_out is not None and isinstance(self.source, DecodesIntoSlots):
            self.source.out_buffer = self.ring_out.slot_for
        poll_ms = int(plan.heartbeat_s * 1000)
        if self.source is None:
            self.entrance = Entrance.bind(self.ctx, plan.input, hwm=plan.hwm, capacity=plan.queue, policy=plan.policy,
                                          drops=self.drops, ring=self.ring_in, poll_ms=poll_ms)
        if plan.output:
            self.outlet = Outlet.connect(self.ctx, plan.output, hwm=plan.output_hwm, policy=plan.output_policy, drops=self.drops,
                                         wait=self.keep_waiting, ring=self.ring_out, poll_ms=poll_ms)
        if plan.preview:
            from edge.preview.tap import PreviewTap

            self.preview = PreviewTap(self.ctx, plan.preview, plan.name, fps=plan.run.publish.preview_fps, source=plan.source)
        self.heartbeat("ready", force=True)

    def close(self) -> None:
        for stage in reversed(self.stages):
            try:
                stage.close()
            except Exception:  # one stage failing to close must not keep the others (the record) open
                log.exception("%s: closing stage %s failed", self.plan.name, getattr(stage, "name", stage))
        for part in (self.source, self.preview, self.entrance, self.ring_in):
            if part is not None:
                part.close()
        if self.outlet is not None:
            self.outlet.close(linger_ms=2000 if self.finished else 0)  # after eos: let the last messages go out
        elif self.ring_out is not None:
            self.ring_out.close()

    def run(self) -> int:
        while not self.stop:
            self.heartbeat("running")
            if self.source is not None:
                t_read = time.monotonic_ns()
                msg = self.source.read()
                if msg is None:
                    return self.finish()
                t_in = int(msg.header.get("t_capture_ns", t_read)) if msg.topic == "frame" else t_read
                # A paced file sleeps inside read(): count the work from the capture instant, not the wait.
                self.handle(msg, Envelope(t_in, msg.header.get("stamps", [])),
                            busy_from=max(t_read, t_in) if not self.plan.run.fast else t_read)
                continue
            item = self.entrance.next()
            if item is None:
                continue
            if item[0].topic == "eos":
                self.ended.add(str(item[0].header.get("source", "")))
                if len(self.ended) >= self.plan.upstreams:  # every source's chain has ended
                    return self.finish()
                continue
            self.handle(*item)
        return 0

    def handle(self, msg: Message, env: Envelope, busy_from: int | None = None) -> None:
        ring = self.ring_in if env.ref is not None else None
        if ring is not None and not ring.in_time(env.ref):
            return  # reused while it waited in our queue: the next frame's gap explains it
        if self.ring_in is not None and msg.topic in PER_FRAME_TOPICS:
            env.dropped += self.ring_in.take_overwritten()
        last_seq = self.numbering.last_seq
        if self.numbering.check(msg, env):  # a frame's later faces are not counted as frames again
            self.meter.arrived(env.t_in)
        t0 = busy_from if busy_from is not None else time.monotonic_ns()
        out = feed(self.stages, [msg])
        self.meter.took(time.monotonic_ns() - t0)
        if self.preview is not None:
            self.preview.offer(msg, out)
        if ring is not None and not ring.done_with(env.ref):
            self.numbering.last_seq = last_seq  # the next frame sees the hole, explained as this drop
            return
        self.emit(out, env)

    def emit(self, messages: list[Message], env: Envelope) -> None:
        if not messages:
            return
        t_out = time.monotonic_ns()
        for m in messages:
            if m.topic == "me.event":
                self.meter.result(float(m.header["latency_ms"]["offset_to_result"]), str(m.header.get("source", "")))
            if self.outlet is None:
                continue  # the last process: its sink stage has already sent it
            if self.plan.source:
                m.header["source"] = self.plan.source  # a frame's URI becomes its source's name from capture on
            if "stamps" not in m.header:
                m.header["stamps"] = [*env.stamps, [self.plan.name, env.t_in, t_out]]
            self.outlet.send(m)
        self.meter.n_out += len(messages)

    def finish(self) -> int:
        """End of stream: flush every stage, forward eos, report, exit 0."""
        drained = drain(self.stages)
        if self.preview is not None:
            self.preview.offer(None, drained)
        self.emit(drained, Envelope(time.monotonic_ns()))
        if self.outlet is not None:
            # Our whole count, before "eos" goes on: the supervisor's final metrics follow the last process's
            # "finishing", which this heartbeat precedes.
            self.heartbeat("finishing", force=True)
            self.outlet.end(end_of_stream(self.plan.source or self.plan.run.source))
        elif self.plan.final_status and any(takes_status(s) for s in self.stages):
            self._wait_for_final_status()
        self.finished = True
        self.heartbeat("done", force=True)
        return 0

    def _wait_for_final_status(self) -> None:
        """Say "finishing" and publish what arrives until the supervisor's final metrics (FINAL_STATUS_WAIT_S
        at most): its periodic ticks may all have come before any subscriber, or not at all in a short run."""
        self.heartbeat("finishing", force=True)
        deadline = time.monotonic() + FINAL_STATUS_WAIT_S
        while time.monotonic() < deadline and self.keep_waiting("finishing"):
            self.entrance.receive()
            while self.entrance.queue:
                msg, env = self.entrance.queue.popleft()
                if msg.topic == "eos":
                    continue
                self.handle(msg, env)
                if msg.topic == "status" and msg.header.get("final") is True:
                    return
            self.entrance.sock.poll(50)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the supervisor dies, so no stage outlives it (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


AUTOGROUP = Path("/proc/self/autogroup")


def add_niceness(niceness: int) -> None:
    """Add niceness to this process and, when it leads its own session, to its scheduler autogroup.

    With autogroup scheduling (sched_autogroup_enabled, on in many kernels) the CPU is shared between
    sessions first, and a process's nice value only ranks it inside its session. Every stage process leads
    a session of its own (the supervisor starts it so), so its nice value alone changed nothing against
    the other stages: under --fast, infer's flow kept half a core (48-108 ms wall for 32 CPU ms) until the
    group's nice was set too (31-50 ms). A process that does not lead its session shares the group with
    its session (a user's shell): that group is left alone.
    """
    os.nice(niceness)
    if os.getsid(0) != os.getpid() or not AUTOGROUP.exists():
        return
    text = AUTOGROUP.read_text()
    if not text.strip():  # the kernel prints nothing for a task in the root group (a container's init session): no group of its own to set
        return
    try:
        current = int(text.rsplit("nice", 1)[1])
    except (IndexError, ValueError):
        raise OSError(f"{AUTOGROUP} reads {text.strip()!r}, not '/autogroup-N nice N'") from None
    AUTOGROUP.write_text(f"{min(19, current + niceness)}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plan = ProcessPlan.from_json(argv[0])
    parent = int(argv[1]) if len(argv) > 1 else None
    _die_with_parent()
    if parent is not None and os.getppid() != parent:
        return 1  # the supervisor died before prctl took effect
    logging.basicConfig(level=os.environ.get("MESTREAM_LOG_LEVEL", "WARNING"),
                        format=f"%(asctime)s %(levelname)s {plan.name}[%(process)d] %(name)s: %(message)s", datefmt="%H:%M:%S")
    if plan.nice:
        try:
            add_niceness(plan.nice)
        except OSError as exc:  # a sandbox that forbids it: a scheduling preference, not worth a crash loop
            logging.getLogger(__name__).warning("%s: could not add niceness %d (%s); the stages share the CPU as equals", plan.name, plan.nice, exc)
    ctx = zmq.Context()
    proc = StageProcess(plan, ctx)

    def stop(signum, frame):
        proc.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        proc.open()
        code = proc.run()
    except MestreamError as exc:
        # A user mistake (no camera, bad artifact, port taken): say it once; the supervisor stops everything.
        proc.heartbeat("fatal", force=True, error=str(exc))
        code = EXIT_USER_ERROR
    finally:
        proc.close()
        proc.control.close(linger=200)  # let the last heartbeat ("done"/"fatal") reach the supervisor
        ctx.term()
    return code


if __name__ == "__main__":
    sys.exit(main())
