"""Subscribers do what they like: one reads slowly, one connects and vanishes. The publisher over real
tcp 127.0.0.1 never waits for them, its memory stays bounded by the high-water mark, and a well-behaved
subscriber sees the same latency as when it was alone."""

import json
import socket
import threading
import time

import numpy as np
import zmq
from stand_ins import free_port

from edge.messages import status
from edge.stages.publish import Publish

PAYLOAD = "x" * 20_000  # a 20 kB status: slow subscribers fill their buffers after a few hundred


class _Listener:
    """A well-behaved subscriber in a thread: the latency of every message, from send to receipt."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"me.status")
        self.sock.connect(endpoint)
        self.latencies: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            if self.sock.poll(20):
                body = json.loads(self.sock.recv_multipart()[1])
                self.latencies.append((body["phase"], (time.monotonic_ns() - body["sent_ns"]) / 1e6))

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close(0)

    def of(self, phase):
        return np.asarray([ms for p, ms in self.latencies if p == phase])


def _rss_mb() -> float:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _publish(pub, phase, n, pace_s=0.0):
    took = []
    for _ in range(n):
        t = time.perf_counter()
        pub.process(status("test", "tick", PAYLOAD if phase != "probe" else "", phase=phase, sent_ns=time.monotonic_ns()))
        took.append(time.perf_counter() - t)
        if pace_s:
            time.sleep(pace_s)
    return np.asarray(took)


def test_a_slow_and_a_vanished_subscriber_neither_block_the_publisher_nor_grow_its_memory_nor_slow_the_others():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = Publish(endpoint, hwm=50)
    pub.open()
    ctx = zmq.Context()
    good = _Listener(ctx, endpoint)
    slow = vanished = raw = None
    try:
        for _ in range(100):  # wait until the good subscriber's subscription has reached the publisher
            _publish(pub, "probe", 1)
            time.sleep(0.02)
            if good.latencies:
                break
        _publish(pub, "alone", 300, pace_s=0.002)

        slow = ctx.socket(zmq.SUB)  # subscribes, never reads, and keeps only one message on its side
        slow.setsockopt(zmq.LINGER, 0)
        slow.setsockopt(zmq.RCVHWM, 1)
        slow.setsockopt(zmq.RCVBUF, 4096)
        slow.setsockopt(zmq.SUBSCRIBE, b"")
        slow.connect(endpoint)
        vanished = ctx.socket(zmq.SUB)
        vanished.setsockopt(zmq.LINGER, 0)
        vanished.setsockopt(zmq.SUBSCRIBE, b"")
        vanished.connect(endpoint)
        raw = socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))  # a TCP peer that never speaks
        time.sleep(0.3)
        vanished.close(0)  # gone without a word, mid-stream
        vanished = None
        rss_before = _rss_mb()
        crowded = _publish(pub, "crowded", 300, pace_s=0.002)
        flood = _publish(pub, "flood", 5000)  # 100 MB offered to a subscriber that reads nothing
        raw.close()
        raw = None
        rss_after = _rss_mb()
        time.sleep(0.3)
    finally:
        good.close()
        for s in (slow, vanished):
            if s is not None:
                s.close(0)
        if raw is not None:
            raw.close()
        ctx.term()
        pub.close()

    # never blocks: no send waits on a subscriber (a blocked PUB would stall the flood for good); bounds are
    # loose because the machine is shared, a wait on a subscriber would be unbounded
    assert flood.sum() < 5.0 and max(crowded.max(), flood.max()) < 0.25, (flood.sum(), crowded.max(), flood.max())
    # memory bounded by the high-water mark (50 x 20 kB per subscriber), not by what was offered (100 MB)
    assert rss_after - rss_before < 30, (rss_before, rss_after)
    # the well-behaved subscriber got its messages, as fast as when it was alone
    a, c = good.of("alone"), good.of("crowded")
    assert len(a) >= 295 and len(c) >= 295, (len(a), len(c))
    p50_a, p95_a = np.percentile(a, [50, 95])
    p50_c, p95_c = np.percentile(c, [50, 95])
    assert p50_c < max(2 * p50_a, p50_a + 2.0), (p50_a, p50_c)
    assert p95_c < max(3 * p95_a, p95_a + 10.0), (p95_a, p95_c)
