"""Fair queuing at the shared infer entrance: a busy source cannot starve another."""

import time

import zmq

from edge import bus
from edge.entrance import Entrance, Envelope, FairQueue
from edge.messages import Message


def _from(source: str, n: int) -> Message:
    """A message from one source's chain (a status: it needs no crops to pass the entrance's checks)."""
    return Message("status", {"source": source, "n": n, "stage": "spot", "event": "test", "detail": ""})


def test_one_source_is_served_first_in_first_out():
    q = FairQueue()
    for n in range(5):
        q.append((_from("s0", n), Envelope(0)))
    assert [q.popleft()[0].header["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(q) == 0


def test_sources_are_served_in_turn_and_each_keeps_its_own_order():
    q = FairQueue()
    for n in range(6):
        q.append((_from("busy", n), Envelope(0)))
    q.append((_from("quiet", 0), Envelope(0)))
    q.append((_from("quiet", 1), Envelope(0)))
    q.append((Message("eos", {"source": "quiet"}), Envelope(0)))
    served = [(m.header["source"], m.header.get("n", m.topic)) for m, _ in (q.popleft() for _ in range(9))]
    assert served[:6] == [("busy", 0), ("quiet", 0), ("busy", 1), ("quiet", 1), ("busy", 2), ("quiet", "eos")]
    assert served[6:] == [("busy", 3), ("busy", 4), ("busy", 5)]


def test_a_burst_from_one_source_queued_at_the_entrance_does_not_hold_back_another(tmp_path):
    """Two fake sources push into one entrance: the busy one 200 messages, queued first, then the quiet one 5.
    The quiet source's messages are served in turn with the burst (2nd, 4th, ...), not behind its 200."""
    ctx = zmq.Context()
    try:
        endpoint = f"ipc://{tmp_path}/infer.in"
        limits = bus.WireLimits()
        sock = bus.open_socket(ctx, zmq.PULL, bind=endpoint, hwm=2, limits=limits)
        entrance = Entrance(sock, capacity=512, policy="block", limits=limits, drops=bus.DropLog("infer"), poll_ms=200)
        busy = bus.open_socket(ctx, zmq.PUSH, connect=endpoint, hwm=1000)
        quiet = bus.open_socket(ctx, zmq.PUSH, connect=endpoint, hwm=1000)

        def queue_up_to(n: int) -> None:
            deadline = time.monotonic() + 5
            while len(entrance.queue) < n and time.monotonic() < deadline:
                entrance.receive()
                time.sleep(0.01)
            assert len(entrance.queue) == n

        for n in range(200):
            bus.send(busy, _from("busy", n))
        queue_up_to(200)
        for n in range(5):
            bus.send(quiet, _from("quiet", n))
        queue_up_to(205)
        served = [(m.header["source"], m.header["n"]) for m, _ in (entrance.next() for _ in range(205))]
        assert [i for i, (source, _) in enumerate(served) if source == "quiet"] == [1, 3, 5, 7, 9]
        assert [n for source, n in served if source == "quiet"] == [0, 1, 2, 3, 4]
        assert [n for source, n in served if source == "busy"] == list(range(200))
    finally:
        ctx.destroy(linger=0)  # a failed assertion must not leave term() waiting on unsent messages
