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


def test_a_burst_from_one_source_does_not_hold_back_another_at_a_blocking_entrance(tmp_path):
    """Two fake sources push into one blocking entrance of 8: the busy one 200 intervals at once, the quiet
    one 5. The quiet source's all come out early (ZeroMQ's own buffers hold a dozen or so of the burst
    ahead of them), not behind the burst's 200."""
    ctx = zmq.Context()
    try:
        endpoint = f"ipc://{tmp_path}/infer.in"
        limits = bus.WireLimits()
        sock = bus.open_socket(ctx, zmq.PULL, bind=endpoint, hwm=2, limits=limits)
        entrance = Entrance(sock, capacity=8, policy="block", limits=limits, drops=bus.DropLog("infer"), poll_ms=200)
        busy = bus.open_socket(ctx, zmq.PUSH, connect=endpoint, hwm=1000)
        quiet = bus.open_socket(ctx, zmq.PUSH, connect=endpoint, hwm=1000)
        for n in range(200):
            bus.send(busy, _from("busy", n))
        deadline = time.monotonic() + 5  # the burst is queued first: the entrance's queue full, the rest waiting in ZeroMQ
        while len(entrance.queue) < 8 and time.monotonic() < deadline:
            entrance.receive()
            time.sleep(0.01)
        assert len(entrance.queue) == 8 and all(m.header["source"] == "busy" for m, _ in entrance.queue)
        for n in range(5):
            bus.send(quiet, _from("quiet", n))
        time.sleep(0.2)
        served = []
        while len(served) < 205:
            item = entrance.next()
            if item is not None:
                served.append((item[0].header["source"], item[0].header["n"]))
        quiet_at = [i for i, (source, _) in enumerate(served) if source == "quiet"]
        assert [served[i][1] for i in quiet_at] == [0, 1, 2, 3, 4]
        assert quiet_at[-1] < 40, quiet_at  # served in turn with the burst, not behind its 200
        assert [n for source, n in served if source == "busy"] == list(range(200))
    finally:
        ctx.destroy(linger=0)  # a failed assertion must not leave term() waiting on unsent messages

