"""Peers that lie: frames declaring gigabytes, garbage on the sockets the stage fuzz test does not reach
(the result PUB, the preview relay, the supervisor's control socket), and nothing on the wire that could
run code. Stage entrances (track, spot, infer) get their 10,000 messages in test_pipeline_integration."""

import os
import re
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from stand_ins import free_port

from edge import bus
from edge.messages import Message
from edge.process import RunOptions
from edge.topology import PublishConfig, parse_topology

EDGE = Path(__file__).resolve().parents[2] / "edge"


def _zmtp_peer(port: int, socket_type: bytes) -> socket.socket:
    """A hand-made ZMTP 3.0 peer (NULL security) that has finished its handshake with a libzmq socket."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31)
    greeting = b""
    while len(greeting) < 64:
        chunk = raw.recv(64 - len(greeting))
        assert chunk, "the peer closed during the greeting"
        greeting += chunk
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    raw.sendall(bytes([0x04, len(body)]) + body)
    return raw


def _closed_by_peer(raw: socket.socket, seconds: float) -> bool:
    raw.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if raw.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


@pytest.mark.parametrize(
    "kind, peer_type, options",
    [
        (zmq.PULL, b"PUSH", {"limits": bus.WireLimits()}),  # a stage's entrance
        (zmq.PUB, b"SUB", {"max_in_bytes": bus.MAX_SUBSCRIPTION_BYTES}),  # the result stream and the preview relay
    ],
    ids=["stage entrance", "publisher"],
)
def test_a_frame_that_declares_more_than_the_limit_is_refused_from_its_header_before_any_allocation(kind, peer_type, options):
    ctx = zmq.Context()
    port = free_port()
    sock = bus.open_socket(ctx, kind, bind=f"tcp://127.0.0.1:{port}", **options)
    unbounded = bus.open_socket(ctx, kind, bind=f"tcp://127.0.0.1:{free_port()}")  # the same socket without a limit
    try:
        for target, expect_closed in ((sock, True), (unbounded, False)):
            target_port = int(target.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
            raw = _zmtp_peer(target_port, peer_type)
            # one final frame announcing 1 GiB, then a trickle of it: only the header decides
            raw.sendall(bytes([0x02]) + struct.pack(">Q", 1 << 30) + b"\x01" + b"A" * 1000)
            assert _closed_by_peer(raw, 2.0 if expect_closed else 0.8) is expect_closed
            raw.close()
        if kind == zmq.PULL:  # the entrance still works for honest senders
            push = bus.open_socket(ctx, zmq.PUSH, connect=f"tcp://127.0.0.1:{port}")
            bus.send(push, Message("face", {"seq": 1, "found": False}))
            assert sock.poll(2000) and bus.decode(bus.recv_parts(sock, bus.WireLimits())).header["seq"] == 1
            push.close(0)
    finally:
        sock.close(0)
        unbounded.close(0)
        ctx.term()


def test_garbage_on_the_result_stream_the_preview_relay_and_the_control_socket_changes_nothing(tmp_path, supervise, zmq_ctx):
    import cv2

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(900):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    pub_port, preview_port = free_port(), free_port()
    topo = parse_topology({"runtime": {"heartbeat_s": 0.2, "hang_timeout_s": 1.5, "status_every_s": 0.5}, "process": [
        {"name": "capture", "stages": ["capture"]}, {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    run = RunOptions(source=str(video), publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{pub_port}",
                                                             preview=f"tcp://127.0.0.1:{preview_port}"))
    ctx = zmq_ctx
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.status")
    sub.connect(f"tcp://127.0.0.1:{pub_port}")
    watched = supervise(topo, run)
    sup = watched.sup
    rng = np.random.default_rng(11)
    sent = 0
    try:
        deadline = time.monotonic() + 30
        while not all(c.state == "running" for c in sup.children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(c.state == "running" for c in sup.children), sup.metrics()
        rss_before = sup.metrics()["infer"]["rss_mb"]

        hostile = []
        for port in (pub_port, preview_port):
            xsub = ctx.socket(zmq.XSUB)  # may send anything upstream: subscriptions, and not
            xsub.setsockopt(zmq.LINGER, 0)
            xsub.setsockopt(zmq.SNDHWM, 100_000)
            xsub.connect(f"tcp://127.0.0.1:{port}")
            hostile.append(xsub)
        control = ctx.socket(zmq.PUSH)
        control.setsockopt(zmq.LINGER, 0)
        control.setsockopt(zmq.SNDHWM, 100_000)
        control.connect(f"ipc://{sup.workdir}/control")
        hostile.append(control)
        time.sleep(0.2)
        for i in range(10_000):
            kind = i % 5
            if kind == 0:  # a subscription to a random topic, sometimes far too long
                parts = [b"\x01" + rng.bytes(int(rng.integers(0, 3000 if i % 15 == 0 else 64)))]
            elif kind == 1:  # an unsubscription of something never subscribed
                parts = [b"\x00" + rng.bytes(8)]
            elif kind == 2:  # multipart junk
                parts = [rng.bytes(int(rng.integers(0, 300))) for _ in range(int(rng.integers(1, 12)))]
            elif kind == 3:  # a well-formed wire message of the wrong kind, claiming a huge array
                parts = [b"heartbeat", b'{"v":1,"arrays":[{"name":"x","dtype":"uint8","shape":[65536,65536]}],"process":"infer"}', b"x"]
            else:  # a forged heartbeat from a process that is not ours, and a wrong-version one
                parts = [b"heartbeat", b'{"v":1,"arrays":[],"process":"infer","pid":1,"state":"fatal","error":"forged"}'] if i % 2 else [b"heartbeat", b'{"v":9}']
            hostile[i % 3].send_multipart(parts)
            sent += 1
        for _ in range(20):  # raw TCP junk, some of it before any handshake
            for port in (pub_port, preview_port):
                with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                    raw.sendall(rng.bytes(int(rng.integers(1, 2000))))
        time.sleep(1.5)
        for s in hostile:
            s.close(0)

        statuses = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if sub.poll(100):
                import json

                statuses.append(json.loads(sub.recv_multipart()[1]))
        metrics = sup.metrics()
    finally:
        watched.stop()
    assert sent == 10_000
    assert watched.code == 130, watched.code  # the forged "fatal" did not stop the run
    assert any(s["event"] == "metrics" for s in statuses)  # the honest subscriber is still served
    assert all(m["restarts"] == 0 and m["state"] == "running" for m in metrics.values()), metrics
    assert metrics["infer"]["rss_mb"] - rss_before < 30, (rss_before, metrics["infer"]["rss_mb"])
    assert sup.workdir is None


# What would let bytes from a socket run code or build arbitrary objects.
UNSAFE = re.compile(
    r"^\s*(import|from)\s+(c?pickle|marshal|shelve|dill|cloudpickle)\b"
    r"|\b(eval|exec)\s*\("
    r"|allow_pickle\s*=\s*True"
    r"|\b(recv|send)_(pyobj|serialized)\b"
    r"|\byaml\.(unsafe_)?load\s*\("
    r"|\bpickle\.loads?\s*\(",
    re.MULTILINE,
)


def test_nothing_in_the_edge_package_unpickles_or_evaluates_what_it_receives():
    offenders = []
    for path in sorted(EDGE.rglob("*.py")):
        for match in UNSAFE.finditer(path.read_text(encoding="utf-8")):
            line = path.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
            offenders.append(f"{path.relative_to(EDGE.parent)}:{line}: {match.group(0).strip()}")
    assert not offenders, offenders
    assert UNSAFE.search("import pickle\n") and UNSAFE.search("x = eval(text)") and UNSAFE.search("sock.recv_pyobj()")


def test_object_arrays_and_pickled_payloads_off_the_wire_are_refused_not_loaded():
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch /tmp/mestream-pwned",))

    payload = pickle.dumps(Boom())
    for header in (b'{"v":1,"arrays":[{"name":"a","dtype":"object","shape":[1]}]}',
                   b'{"v":1,"arrays":[{"name":"a","dtype":"V8","shape":[1]}]}'):
        with pytest.raises(bus.BadMessage, match="dtype"):
            bus.decode([b"face", header, payload[:8]])
    with pytest.raises(bus.BadMessage, match="not JSON"):
        bus.decode([b"face", payload])
    assert not Path("/tmp/mestream-pwned").exists()


def test_every_endpoint_of_a_default_run_is_loopback_or_a_private_ipc_folder(tmp_path):
    import argparse

    from edge.commands.run import add_arguments
    from edge.supervisor import plan_processes
    from edge.topology import load_topology

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--source", "x.mp4", "--preview"])
    topo = load_topology()
    assert topo.publish.allow_public is False
    for endpoint in (topo.publish.endpoint, args.preview):
        bus.check_bind_endpoint(endpoint, allow_public=False)  # raises for anything another host could reach
        assert endpoint.startswith("tcp://127.0.0.1:")
    plans = plan_processes(topo, RunOptions(source="x.mp4"), tmp_path, f"ipc://{tmp_path}/control")
    for plan in plans:
        for endpoint in (plan.input, plan.output, plan.control):
            assert endpoint == "" or endpoint.startswith(f"ipc://{tmp_path}/"), endpoint
    with pytest.raises(Exception, match="--allow-public"):
        bus.check_bind_endpoint("tcp://0.0.0.0:5560")
    bus.check_bind_endpoint("tcp://0.0.0.0:5560", allow_public=True)  # exposing one is possible, on purpose
