"""Where messages enter a stage process: checked, queued under the process's policy, and numbered.

The entrance holds at most `queue` messages. With policy "drop", a process that falls behind drops
per-frame messages in whole runs (it drops until its queue has emptied, so the spotter sees one clean
gap, not a comb of holes); with "block" it stops reading and ZeroMQ's high-water mark pushes back on the
sender. Malformed messages (edge/bus.py) and well-formed ones a stage could not use (edge/contents.py:
wrong dtype, shape or header types) are counted and dropped, never fatal.

Each accepted message comes with an Envelope: what the host knows about it and the stage does not (when
it arrived, the hops before, its shared-memory slot, the frames dropped right before it). The wire's
own bookkeeping keys ("shm", "sender_dropped") are taken off the header into the envelope, so a stage
sees only its topic's fields. Numbering then checks the sequence of per-frame topics: a hole is marked on
the message as "gap", and counted as lost unless drops explain it. A frame with several faces gives one
"face" message per face, all with the frame's seq and each with its own face_id: the later ones are the
same frame, not a restart.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import zmq

from edge import bus
from edge.contents import content_problem
from edge.messages import PER_FRAME_TOPICS, TOPICS, Message
from edge.ring_adapters import RingIn


@dataclass
class Envelope:
    """The host's own record of one message, kept beside it and never in the header a stage sees."""

    t_in: int  # when it entered this process (monotonic ns; a source frame: its capture instant)
    stamps: list = field(default_factory=list)  # the hops before this process: [[process, t_in, t_out], ...]
    ref: dict | None = None  # the shared-memory slot its image was read from (edge/shared_frames.py)
    dropped: int = 0  # frames dropped right before it, here or by its sender: a hole that is no loss
    seq: int | None = None  # per-frame topics, once numbered: the source frame's number ...
    gap: int = 0  # ... and the frames missing right before it


class Numbering:
    """Sequence checks of per-frame topics: a hole in seq is marked as the message's "gap" and counted as
    lost unless drops (this entrance's, its sender's) or an earlier hop's gap explain it."""

    def __init__(self) -> None:
        self.last_seq = -1
        self.lost = 0  # holes in seq that no drop explains (a restart, a crash): frames lost, not dropped
        self._faces_at_last: set = set()  # face_ids of the "face" messages numbered at last_seq

    def check(self, msg: Message, env: Envelope) -> bool:
        """Number one message; False when it is another face of the frame numbered just before."""
        if msg.topic not in PER_FRAME_TOPICS:
            return True
        seq = int(msg.header["seq"])
        last = self.last_seq
        face_id = msg.header.get("face_id") if msg.topic == "face" else None
        if msg.topic == "face" and seq == last and face_id is not None and face_id not in self._faces_at_last:
            self._faces_at_last.add(face_id)
            env.seq, env.gap = seq, int(msg.header.get("gap", 0) or 0)
            return False
        self._faces_at_last = {face_id}
        missing = 0
        if last >= 0 and seq > last + 1:
            missing = seq - last - 1
        elif last >= 0 and seq <= last:
            missing = 1  # the source restarted: whatever the spotter holds belongs to another stream
        incoming_gap = int(msg.header.get("gap", 0) or 0)  # stages carry a gap an earlier hop marked
        if missing:
            self.lost += max(0, missing - max(incoming_gap, env.dropped))
            msg.header["gap"] = max(incoming_gap, missing)
        env.seq, env.gap = seq, int(msg.header.get("gap", 0) or 0)
        self.last_seq = seq
        return True


class FairQueue:
    """The messages waiting at an entrance: one first-in first-out line per source (header "source"),
    served in turn, so a source that sends a burst cannot make another's messages wait behind all of it.
    With one source it is a plain queue. A source's end of stream stays behind its own messages."""

    def __init__(self) -> None:
        self._lines: dict[str, deque[tuple[Message, Envelope]]] = {}  # in serving order: the next to serve first
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        """Every waiting message, source by source (not the serving order of several sources)."""
        return (item for line in self._lines.values() for item in line)

    def clear(self) -> None:
        self._lines.clear()
        self._len = 0

    def append(self, item: tuple[Message, Envelope]) -> None:
        self._lines.setdefault(str(item[0].header.get("source", "")), deque()).append(item)
        self._len += 1

    def popleft(self) -> tuple[Message, Envelope]:
        if not self._len:
            raise IndexError("pop from an empty queue")
        key, line = next(iter(self._lines.items()))  # empty lines are removed, so this one has a message
        item = line.popleft()
        self._len -= 1
        del self._lines[key]
        if line:
            self._lines[key] = line  # to the back: every other source waiting is served before its next one
        return item


class Entrance:
    """A PULL socket, a queue of at most `capacity` checked messages, and the policy when it is full."""

    def __init__(self, sock: zmq.Socket, *, capacity: int, policy: str, limits: bus.WireLimits, drops: bus.DropLog,
                 ring: RingIn | None = None, poll_ms: int = 500) -> None:
        self.sock = sock
        self.capacity = capacity
        self.policy = policy  # "drop" | "block"
        self.limits = limits
        self.drops = drops
        self.ring = ring  # frames by reference come in through it; None: frames come whole on the socket
        self.poll_ms = poll_ms  # how long next() waits for a message (the heartbeat period)
        self.queue = FairQueue()
        self._dropping = False
        self._dropped = 0  # per-frame messages dropped since the last one accepted

    @classmethod
    def bind(cls, ctx: zmq.Context, endpoint: str, *, hwm: int, **kwargs) -> Entrance:
        """An entrance on a PULL socket bound at endpoint, with the wire's default limits."""
        limits = bus.WireLimits()
        return cls(bus.open_socket(ctx, zmq.PULL, bind=endpoint, hwm=hwm, limits=limits), limits=limits, **kwargs)

    def close(self) -> None:
        self.sock.close(0)

    def next(self) -> tuple[Message, Envelope] | None:
        """The next message, waiting poll_ms at most; None when none came."""
        self.receive()
        if not self.queue:
            if self.sock.poll(self.poll_ms):
                self.receive()
            if not self.queue:
                return None
        item = self.queue.popleft()
        if not self.queue:
            self._dropping = False  # caught up: the next frame is accepted, with its gap marked
        return item

    def receive(self) -> None:
        """Move waiting messages from the socket to the queue, applying the policy."""
        block = self.policy == "block"
        budget = self.capacity * 4 + 16  # bounded work per call, so heartbeats keep flowing under a flood
        while budget > 0 and not (block and len(self.queue) >= self.capacity):
            budget -= 1
            try:
                parts = bus.recv_parts(self.sock, self.limits)
                if parts is None:
                    return
                msg = bus.decode(parts, self.limits)
            except bus.BadMessage as exc:
                self.drops.drop("malformed", str(exc))
                continue
            item = self._admit(msg)
            if item is not None:
                self.queue.append(item)

    def _admit(self, msg: Message) -> tuple[Message, Envelope] | None:
        h = msg.header
        per_frame = msg.topic in PER_FRAME_TOPICS
        if msg.topic not in TOPICS:
            self.drops.drop("unknown topic", msg.topic)
            return None
        if per_frame and not _valid_seq(h):
            self.drops.drop("malformed", f"{msg.topic} without an integer seq")
            return None
        sender_dropped = h.pop("sender_dropped", 0)
        if not _count(sender_dropped):
            self.drops.drop("malformed", f"{msg.topic}: sender_dropped = {sender_dropped!r}, expected an integer >= 0")
            return None
        ref = h.pop("shm", None) if msg.topic == "frame" else None
        if ref is not None:
            problem = self.ring.resolve(msg, ref) if self.ring is not None else \
                "frame refers to shared memory, but this process reads frames from its socket only"
            if problem == "overwritten":
                self._dropped += 1 + sender_dropped
                self.drops.drop("overwritten", "its shared-memory slot was reused before it was read")
                return None
            if problem:
                self.drops.drop("malformed", problem)
                return None
        problem = content_problem(msg)  # well-formed on the wire, but could it crash the stage?
        if problem:
            self.drops.drop("malformed", f"{msg.topic}: {problem}")
            return None
        if per_frame and (self._dropping or len(self.queue) >= self.capacity):
            self._dropping = True  # drop a whole run until the queue has emptied
            self._dropped += 1 + sender_dropped  # the frames its sender dropped vanish with it: part of our hole
            self.drops.drop("behind", f"entrance queue of {self.capacity} full")
            return None
        env = Envelope(time.monotonic_ns(), h.get("stamps", []), ref)
        if per_frame:
            env.dropped, self._dropped = self._dropped + sender_dropped, 0
        return msg, env


def _valid_seq(header: dict[str, Any]) -> bool:
    seq = header.get("seq")
    return isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
