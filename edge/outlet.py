"""Where messages leave a stage process for the next one: a PUSH socket under the next entrance's policy.

Towards a "drop" entrance a per-frame message is sent without waiting: when the pipe is full it is
dropped here and counted, and the next one sent carries "sender_dropped" so the next hop counts the hole
as drops, not losses. Towards a "block" entrance the outlet waits (heartbeating "blocked": back-pressure,
not a hang). Frames may leave by reference to a shared-memory ring (RingOut). At end of stream the
outlet sends "eos" and stays until the next process hangs up (`end`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from edge import bus
from edge.messages import PER_FRAME_TOPICS, Message
from edge.ring_adapters import RingOut

# At end of stream a process waits at most this long for the next one to hang up: enough for a next
# process that is still working through its queue, short enough when it is gone or never came.
FINISH_WAIT_S = 10.0


class Outlet:
    def __init__(self, sock: zmq.Socket, *, policy: str, drops: bus.DropLog, wait: Callable[[str], bool],
                 ring: RingOut | None = None, poll_ms: int = 500) -> None:
        self.sock = sock
        self.policy = policy  # the next process's entrance policy: "drop" | "block"
        self.drops = drops
        self.wait = wait  # wait(state): heartbeat that state; False when the process is stopping
        self.ring = ring
        self.poll_ms = poll_ms
        self._dropped = 0  # per-frame messages dropped here since the last one sent

    @classmethod
    def connect(cls, ctx: zmq.Context, endpoint: str, *, hwm: int, **kwargs) -> Outlet:
        """An outlet on a PUSH socket connected to the next process's endpoint."""
        return cls(bus.open_socket(ctx, zmq.PUSH, connect=endpoint, hwm=hwm), **kwargs)

    def send(self, msg: Message, must: bool = False) -> None:
        """To the next process. Towards a "drop" entrance a full pipe drops (counted); "block" waits."""
        if self.ring is not None:
            msg = self.ring.by_reference(msg)
        if self.policy == "drop" and not must and msg.topic in PER_FRAME_TOPICS:
            if self._dropped:
                msg.header["sender_dropped"] = self._dropped  # so the next hop counts them as drops, not losses
            try:
                bus.send(self.sock, msg, zmq.NOBLOCK)
                self._dropped = 0
            except zmq.Again:
                self._dropped += 1
                self.drops.drop("downstream full", "next process not reading (restarting?)")
            return
        while True:
            try:
                bus.send(self.sock, msg, zmq.NOBLOCK)
                return
            except zmq.Again:
                if not self.wait("blocked"):  # back-pressure, not a hang: the supervisor must not restart us
                    return
                self.sock.poll(self.poll_ms, zmq.POLLOUT)

    def end(self, eos: Message) -> None:
        """Send "eos" and stay until the next process hangs up, FINISH_WAIT_S at most.

        Once sent, the last messages may still wait in the next process's socket engine, and they are lost
        if our end of the connection goes away before it has read them (libzmq drops a peer's undelivered
        input when the peer disconnects); frames in our shared-memory ring would go with our segment. The
        next process exits after "eos", so its hang-up says it has everything."""
        monitor = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            self.send(eos, must=True)
            deadline = time.monotonic() + FINISH_WAIT_S
            while time.monotonic() < deadline and self.wait("finishing"):
                if monitor.poll(self.poll_ms):
                    break
        finally:
            self.sock.disable_monitor()
            monitor.close(0)

    def close(self, linger_ms: int) -> None:
        self.sock.close(linger=linger_ms)
        if self.ring is not None:
            self.ring.close()
