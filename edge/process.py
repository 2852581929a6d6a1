"""One OS process of the pipeline: a chain of stages between an input and an output socket.

The loop is: receive -> check -> process -> send, with a heartbeat to the supervisor every
`heartbeat_s` (counters, fps, latency, CPU, memory). The entrance holds at most `queue` messages. With
policy "drop", a process that falls behind drops per-frame messages at its entrance in whole runs (it
drops until its queue has emptied, so the spotter sees one clean gap, not a comb of holes); with
"block" it stops reading and ZeroMQ's high-water mark pushes back on the sender. Every hop checks
sequence numbers of per-frame topics: a hole is counted and marked on the next message as "gap".
Malformed messages (edge/bus.py) and well-formed ones a stage could not use (edge/contents.py: wrong
dtype, shape or header types) are counted and dropped at the entrance, never fatal. SIGTERM/SIGINT stop the loop cleanly (stages
closed, the record flushed). Frames from the source process may travel as references into a shared-memory
ring (edge/shared_frames.py, plan.shm_out / shm_in): the reader checks each slot's generation before and
after the stage used it, and a reused slot is a counted drop ("overwritten") with a gap. At end of stream ("eos") every stage is flushed, "eos" is forwarded, and
the process exits 0.

Started by edge/supervisor.py as `python -m edge.process PLAN_JSON`; never by hand.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import resource
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from edge import bus
from edge.contents import content_problem
from edge.shared_frames import FrameRing, RingError, RingReader
from edge.messages import PER_FRAME_TOPICS, TOPICS, Message, end_of_stream
from edge.stages.base import drain, feed
from edge.topology import STAGE_MODULES, PublishConfig, stage_options_of
from engines.errors import MestreamError

log = logging.getLogger(__name__)


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


# At end of stream a process waits at most this long for the next one to hang up (see finish()): enough for a
# next process that is still working through its queue, short enough when it is gone or never came.
FINISH_WAIT_S = 10.0
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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ProcessPlan":
        data = json.loads(text)
        run = data.pop("run")
        run["publish"] = PublishConfig(**run["publish"])
        data["stages"] = tuple(data["stages"])
        return cls(run=RunOptions(**run), **data)


# ---- stages ---------------------------------------------------------------------------------------

def build_stage(name: str, options: dict[str, Any], run: RunOptions, resume_seq: int = 0):
    """Construct (not open) one stage from its [stages.NAME] options; bad options raise MestreamError."""
    if name not in STAGE_MODULES:
        raise MestreamError(f"unknown stage {name!r}; expected one of {sorted(STAGE_MODULES)}")
    if name == "capture":
        from edge.stages.capture import Capture, CaptureOptions

        return Capture(run.source, fast=run.fast, options=stage_options_of(name, options, CaptureOptions), start_seq=resume_seq)
    if name == "track":
        from edge.stages.face_tracking import FaceTracking, TrackParams

        params = stage_options_of(name, options, TrackParams)
        if "color_crop" not in options and not run.color_crops:
            params = dataclasses.replace(params, color_crop=False)
        return FaceTracking(params)
    if name == "spot":
        from edge.spotting import make_spotter
        from edge.spotting.params import SpotParams

        return make_spotter(stage_options_of(name, options, SpotParams))
    if name == "classify":
        from edge.stages.classify_gpu import build_classify  # device = "auto" | "gpu" | "cpu" (edge/gpu.py)

        return build_classify(run.artifact, options)
    from edge.stages.publish import Publish

    stage_options_of(name, options, _NoOptions)
    record = run.record or None
    pub = run.publish
    return Publish(pub.endpoint, record=record, allow_public=pub.allow_public, hwm=pub.hwm,
                   curve_secret_key=pub.curve_secret_key or None, curve_clients=pub.curve_clients or None)


@dataclass(frozen=True)
class _NoOptions:
    pass


# ---- metrics --------------------------------------------------------------------------------------

class Meter:
    """Counters and a window of per-message processing times, reported in every heartbeat."""

    def __init__(self) -> None:
        self.n_in = 0
        self.n_out = 0
        self.lost = 0  # holes in seq that no drop explains (a restart, a crash): frames lost, not dropped
        self.first_in_ns = 0
        self.last_in_ns = 0
        self.last_seq = -1
        self.busy_ns: deque[int] = deque(maxlen=512)
        self.results_ms: deque[float] = deque(maxlen=512)  # offset -> result latencies (publisher only)
        self._window_start = time.monotonic()
        self._window_in = 0

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
            "lost": self.lost,
            "fps": round(fps, 2),
            "first_in_ns": self.first_in_ns,
            "last_in_ns": self.last_in_ns,
            "last_seq": self.last_seq,
            "busy_ms": _percentiles(busy),
            "result_ms": _percentiles(res),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "rss_mb": round(_rss_bytes() / 2**20, 1),
            "peak_rss_mb": round(_peak_rss_bytes() / 2**20, 1),
        }


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not values.size:
        return {}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(float(values.max()), 3)}


def _peak_rss_bytes() -> int:
    """VmHWM of this process image; ru_maxrss would carry the parent's peak across exec on Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- the process ----------------------------------------------------------------------------------

class StageProcess:
    def __init__(self, plan: ProcessPlan, ctx: zmq.Context) -> None:
        self.plan = plan
        self.ctx = ctx
        self.limits = bus.WireLimits()
        self.drops = bus.DropLog(plan.name)
        self.meter = Meter()
        self.stop = False
        self.finished = False
        self.queue: deque[tuple[Message, int]] = deque()
        self._dropping = False
        self._dropped_since_accept = 0
        self._send_dropped = 0
        self._last_hb = 0.0
        self.control = bus.open_socket(ctx, zmq.PUSH, connect=plan.control, hwm=100)
        self.stages: list = []
        self.source = None
        self.inp: zmq.Socket | None = None
        self.out: zmq.Socket | None = None
        self.preview = None  # edge.preview.tap.PreviewTap when the run asked for a preview
        self.ring: FrameRing | None = None  # frames out through shared memory (plan.shm_out)
        self.ring_failed = False
        self.reader: RingReader | None = RingReader(plan.shm_in) if plan.shm_in else None
        self._overwritten = 0  # frames found overwritten in their slot, to explain the next frame's gap
        self.shm_frames = 0  # frames sent (writer) or received (reader) through shared memory

    # -- heartbeats ---------------------------------------------------------------------------------
    def heartbeat(self, state: str, force: bool = False, **extra: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last_hb < self.plan.heartbeat_s:
            return
        self._last_hb = now
        header = {"process": self.plan.name, "pid": os.getpid(), "state": state, "t_ns": time.monotonic_ns(),
                  "drops": dict(self.drops.counts), "shm_frames": self.shm_frames, **self.meter.snapshot(), **extra}
        try:
            bus.send(self.control, Message("heartbeat", header), zmq.NOBLOCK)
        except zmq.Again:
            pass  # the supervisor is busy or gone; it judges us by silence, never by a backlog

    # -- lifecycle ----------------------------------------------------------------------------------
    def open(self) -> None:
        self.heartbeat("starting", force=True)
        built = [build_stage(s, self.plan.stage_options.get(s, {}), self.plan.run, self.plan.resume_seq) for s in self.plan.stages]
        if self.plan.stages[0] == "capture":
            self.source, self.stages = built[0], built[1:]
        else:
            self.stages = built
        for stage in built:
            stage.open()
        if self.source is not None and self.plan.shm_out and hasattr(self.source, "out_buffer"):
            self.source.out_buffer = self._slot_for
        if self.source is None:
            self.inp = bus.open_socket(self.ctx, zmq.PULL, bind=self.plan.input, hwm=self.plan.hwm, limits=self.limits)
        if self.plan.output:
            self.out = bus.open_socket(self.ctx, zmq.PUSH, connect=self.plan.output, hwm=self.plan.output_hwm)
        if self.plan.preview:
            from edge.preview.tap import PreviewTap

            self.preview = PreviewTap(self.ctx, self.plan.preview, self.plan.name, fps=self.plan.run.publish.preview_fps)
        self.heartbeat("ready", force=True)

    def close(self) -> None:
        for stage in reversed(self.stages):
            try:
                stage.close()
            except Exception:  # one stage failing to close must not keep the others (the record) open
                log.exception("%s: closing stage %s failed", self.plan.name, getattr(stage, "name", stage))
        if self.source is not None:
            self.source.close()
        if self.preview is not None:
            self.preview.close()
        if self.inp is not None:
            self.inp.close(0)
        if self.reader is not None:
            self.reader.close()
        if self.out is not None:
            # After end of stream the last messages and "eos" may still sit in our queue: let them go out.
            self.out.close(linger=2000 if self.finished else 0)
        if self.ring is not None:
            self.ring.close()  # unlinks the segment (the supervisor removes it too if we are killed)
            self.ring = None

    # -- shared frames ------------------------------------------------------------------------------
    def _keep_waiting(self) -> bool:
        self.heartbeat("blocked")  # waiting for the reader to free a slot is back-pressure, not a hang
        return not self.stop

    def _slot_for(self, shape: tuple, dtype: str):
        """Where the source decodes its next frame: a slot of the ring (None: its own buffer)."""
        if self.ring is None:
            return None
        return self.ring.claim(shape, dtype, block=self.plan.output_policy == "block", wait=self._keep_waiting)

    def _by_reference(self, msg: Message) -> Message:
        """A frame whose pixels went into the ring: the same message with a reference instead of the image."""
        image = msg.arrays.get("image")
        if self.ring_failed or image is None or msg.topic != "frame":
            return msg
        if self.ring is None:
            try:
                self.ring = FrameRing.create(self.plan.shm_out, self.plan.shm_slots, image.nbytes)
            except (OSError, ValueError) as exc:
                self.ring_failed = True
                log.warning("%s: shared frames unavailable (%s); frames go through the socket", self.plan.name, exc)
                return msg
        ref = self.ring.commit(image, block=self.plan.output_policy == "block", wait=self._keep_waiting)
        if ref is None:
            return msg  # larger than a slot (the source changed size) or stopping: inline
        self.shm_frames += 1
        return Message(msg.topic, {**msg.header, "shm": ref}, {k: v for k, v in msg.arrays.items() if k != "image"})

    # -- the loop -----------------------------------------------------------------------------------
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
                self.handle(msg, t_in, busy_from=max(t_read, t_in) if not self.plan.run.fast else t_read)
            else:
                item = self.next_message()
                if item is None:
                    continue
                msg, t_in = item
                if msg.topic == "eos":
                    return self.finish()
                self.handle(msg, t_in)
        return 0

    def next_message(self) -> tuple[Message, int] | None:
        self.receive()
        if not self.queue:
            if self.inp.poll(int(self.plan.heartbeat_s * 1000)):
                self.receive()
            if not self.queue:
                return None
        item = self.queue.popleft()
        if not self.queue:
            self._dropping = False  # caught up: the next frame is accepted, with its gap marked
        return item

    def receive(self) -> None:
        """Move waiting messages from the socket to the entrance queue, applying the policy."""
        block = self.plan.policy == "block"
        budget = self.plan.queue * 4 + 16  # bounded work per call, so heartbeats keep flowing under a flood
        while budget > 0 and not (block and len(self.queue) >= self.plan.queue):
            budget -= 1
            try:
                parts = bus.recv_parts(self.inp, self.limits)
            except bus.BadMessage as exc:
                self.drops.drop("malformed", str(exc))
                continue
            if parts is None:
                return
            try:
                msg = bus.decode(parts, self.limits)
            except bus.BadMessage as exc:
                self.drops.drop("malformed", str(exc))
                continue
            if msg.topic not in TOPICS:
                self.drops.drop("unknown topic", msg.topic)
                continue
            if msg.topic in PER_FRAME_TOPICS and not _valid_seq(msg.header):
                self.drops.drop("malformed", f"{msg.topic} without an integer seq")
                continue
            if msg.topic == "frame" and "shm" in msg.header:
                problem = self._resolve(msg)
                if problem == "overwritten":
                    self._dropped_since_accept += 1 + int(msg.header.get("sender_dropped", 0) or 0)
                    self.drops.drop("overwritten", "its shared-memory slot was reused before it was read")
                    continue
                if problem:
                    self.drops.drop("malformed", problem)
                    continue
            problem = content_problem(msg)  # well-formed on the wire, but could it crash the stage?
            if problem:
                self.drops.drop("malformed", f"{msg.topic}: {problem}")
                continue
            if msg.topic in PER_FRAME_TOPICS and (self._dropping or len(self.queue) >= self.plan.queue):
                self._dropping = True  # drop a whole run until the queue has emptied
                # the frames its sender dropped before it vanish with it: they join the hole we explain
                self._dropped_since_accept += 1 + int(msg.header.get("sender_dropped", 0) or 0)
                self.drops.drop("behind", f"entrance queue of {self.plan.queue} full")
                continue
            if self._dropped_since_accept and msg.topic in PER_FRAME_TOPICS:
                # The hole the spotter will see right before this frame is ours: counted as drops, not losses.
                msg.header["_dropped_here"] = self._dropped_since_accept
                self._dropped_since_accept = 0
            self.queue.append((msg, time.monotonic_ns()))

    def _resolve(self, msg: Message) -> str:
        """Put the referenced slot's pixels into msg as its image; "" or what is wrong."""
        if self.reader is None:
            return "frame refers to shared memory, but this process reads frames from its socket only"
        if "image" in msg.arrays:
            return "frame carries both an image and a shared-memory reference"
        ref = msg.header["shm"]
        try:
            msg.arrays["image"] = self.reader.resolve(ref)
        except RingError as exc:
            return str(exc)
        if not self.reader.still_valid(ref):
            self.reader.release(ref)
            return "overwritten"
        self.shm_frames += 1
        return ""

    def check_sequence(self, msg: Message) -> None:
        if msg.topic not in PER_FRAME_TOPICS:
            return
        seq = int(msg.header["seq"])
        last = self.meter.last_seq
        missing = 0
        if last >= 0 and seq > last + 1:
            missing = seq - last - 1
        elif last >= 0 and seq <= last:
            missing = 1  # the source restarted: whatever the spotter holds belongs to another stream
        # A hole is explained (and was counted) when this entrance or the sender dropped those frames, or
        # when an earlier hop already marked it as the message's gap (stages carry "gap" along).
        incoming_gap = int(msg.header.get("gap", 0) or 0)
        explained = max(incoming_gap, int(msg.header.pop("_dropped_here", 0)) + int(msg.header.pop("sender_dropped", 0) or 0))
        if missing:
            self.meter.lost += max(0, missing - explained)
            msg.header["gap"] = max(int(msg.header.get("gap", 0) or 0), missing)
        self.meter.last_seq = seq

    def handle(self, msg: Message, t_in: int, busy_from: int | None = None) -> None:
        ref = msg.header.get("shm") if msg.topic == "frame" and self.reader is not None else None
        if ref is not None and not self.reader.still_valid(ref):
            self._overwritten_drop(ref)  # reused while it waited in our queue (a live source never waits)
            return
        if self._overwritten and msg.topic in PER_FRAME_TOPICS:
            msg.header["_dropped_here"] = int(msg.header.get("_dropped_here", 0)) + self._overwritten
            self._overwritten = 0
        last_seq = self.meter.last_seq
        self.check_sequence(msg)
        m = self.meter
        m.n_in += 1
        m.first_in_ns = m.first_in_ns or t_in
        m.last_in_ns = time.monotonic_ns()
        stamps = msg.header.get("stamps", [])
        t0 = busy_from if busy_from is not None else time.monotonic_ns()
        out = feed(self.stages, [msg])
        m.took(time.monotonic_ns() - t0)
        if self.preview is not None:
            self.preview.offer(msg, out)
        if ref is not None:
            if not self.reader.still_valid(ref):
                # the writer reused the slot while the stage read it: what it made of it is not trusted
                self.meter.last_seq = last_seq  # the next frame sees the hole, explained as this drop
                self._overwritten_drop(ref)
                return
            self.reader.release(ref)
        self.emit(out, stamps, t_in)

    def _overwritten_drop(self, ref: dict) -> None:
        self.reader.release(ref)
        self._overwritten += 1
        self.drops.drop("overwritten", "its shared-memory slot was reused before the stage was done with it")

    def emit(self, messages: list[Message], stamps: list, t_in: int) -> None:
        if not messages:
            return
        t_out = time.monotonic_ns()
        for m in messages:
            if m.topic == "me.event":
                self.meter.results_ms.append(float(m.header["latency_ms"]["offset_to_result"]))
            if self.out is None:
                continue  # the last process: its sink stage has already sent it
            if "stamps" not in m.header:
                m.header["stamps"] = [*stamps, [self.plan.name, t_in, t_out]]
            self.send(m)
        self.meter.n_out += len(messages)

    def send(self, msg: Message, must: bool = False) -> None:
        """To the next process. Towards a "drop" entrance a full pipe drops (counted); "block" waits."""
        if self.plan.shm_out:
            msg = self._by_reference(msg)
        if self.plan.output_policy == "drop" and not must and msg.topic in PER_FRAME_TOPICS:
            if self._send_dropped:
                msg.header["sender_dropped"] = self._send_dropped  # so the next hop counts them as drops, not losses
            try:
                bus.send(self.out, msg, zmq.NOBLOCK)
                self._send_dropped = 0
            except zmq.Again:
                self._send_dropped += 1
                self.drops.drop("downstream full", "next process not reading (restarting?)")
            return
        while not self.stop:
            try:
                bus.send(self.out, msg, zmq.NOBLOCK)
                return
            except zmq.Again:
                self.heartbeat("blocked")  # back-pressure, not a hang: the supervisor must not restart us
                self.out.poll(int(self.plan.heartbeat_s * 1000), zmq.POLLOUT)

    def _wait_for_hangup(self, monitor: zmq.Socket) -> None:
        """Stay (heartbeating) until the next process disconnects, FINISH_WAIT_S at most."""
        deadline = time.monotonic() + FINISH_WAIT_S
        try:
            while not self.stop and time.monotonic() < deadline:
                self.heartbeat("finishing")
                if monitor.poll(int(self.plan.heartbeat_s * 1000)):
                    break
        finally:
            self.out.disable_monitor()
            monitor.close(0)

    def _wait_for_final_status(self) -> None:
        """Say "finishing" and publish what arrives until the supervisor's final metrics (FINAL_STATUS_WAIT_S
        at most): its periodic ticks may all have come before any subscriber, or not at all in a short run."""
        self.heartbeat("finishing", force=True)
        deadline = time.monotonic() + FINAL_STATUS_WAIT_S
        while not self.stop and time.monotonic() < deadline:
            self.heartbeat("finishing")
            self.receive()
            while self.queue:
                msg, t_in = self.queue.popleft()
                if msg.topic == "eos":
                    continue
                self.handle(msg, t_in)
                if msg.topic == "status" and msg.header.get("final") is True:
                    return
            self.inp.poll(50)

    def finish(self) -> int:
        """End of stream: flush every stage, forward eos, report, exit 0."""
        drained = drain(self.stages)
        if self.preview is not None:
            self.preview.offer(None, drained)
        self.emit(drained, [], time.monotonic_ns())
        if self.out is not None:
            # Once sent, the last messages may still wait in the next process's socket engine, and they are
            # lost if our end of the connection goes away before it has read them (libzmq drops a peer's
            # undelivered input when the peer disconnects); frames in our shared-memory ring would go with
            # our segment. The next process exits after "eos", so its hang-up says it has everything.
            hangup = self.out.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            # Our whole count, before "eos" goes on: the supervisor's final metrics follow the last process's
            # "finishing", which this heartbeat precedes.
            self.heartbeat("finishing", force=True)
            self.send(end_of_stream(self.plan.run.source), must=True)
            self._wait_for_hangup(hangup)
        elif self.plan.final_status and any(getattr(s, "consumes_status", False) for s in self.stages):
            self._wait_for_final_status()
        self.finished = True
        self.heartbeat("done", force=True)
        return 0


def _valid_seq(header: dict[str, Any]) -> bool:
    seq = header.get("seq")
    return isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0


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
        code = 3
    finally:
        proc.close()
        proc.control.close(linger=200)  # let the last heartbeat ("done"/"fatal") reach the supervisor
        ctx.term()
    return code


if __name__ == "__main__":
    sys.exit(main())
