"""CURVE on the result stream: a listed subscriber receives events over tcp, anyone else receives nothing."""

import json
import shutil
import threading
import time

import pytest
import zmq

from edge.keys import write_keypair
from edge.security import secure_pub_socket, secure_sub_socket
from engines.errors import MestreamError

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="this libzmq was built without CURVE")


@pytest.fixture()
def keys(tmp_path):
    server = write_keypair(tmp_path / "device", "server")
    clients = tmp_path / "device" / "clients"
    clients.mkdir()
    listed = write_keypair(tmp_path / "laptop", "laptop")
    shutil.copy(listed.public, clients / "laptop.key")
    stranger = write_keypair(tmp_path / "stranger", "stranger")
    return server, clients, listed, stranger


def _received(sock: zmq.Socket, timeout_ms: int) -> list[list[bytes]]:
    got = []
    while sock.poll(timeout_ms):
        got.append(sock.recv_multipart())
        timeout_ms = 0
    return got


def test_only_the_listed_subscriber_receives_events_over_tcp(keys):
    server, clients, listed, stranger = keys
    ctx = zmq.Context()
    pub = secure_pub_socket(ctx, "tcp://127.0.0.1:*", server.secret, clients)
    endpoint = pub.socket.getsockopt_string(zmq.LAST_ENDPOINT)
    good = secure_sub_socket(ctx, endpoint, listed.secret, server.public)
    bad = secure_sub_socket(ctx, endpoint, stranger.secret, server.public)
    plain = ctx.socket(zmq.SUB)  # no CURVE at all
    plain.linger = 0
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(endpoint)
    try:
        event = json.dumps({"schema": "mestream.event", "label": "surprise"}).encode()
        got_good: list[list[bytes]] = []
        deadline = time.monotonic() + 5.0
        while not got_good and time.monotonic() < deadline:  # PUB drops until the handshake is done
            pub.socket.send_multipart([b"me.event", event])
            got_good = _received(good, 50)
        assert got_good and got_good[0] == [b"me.event", event]
        for _ in range(20):  # keep publishing while the others have every chance to receive
            pub.socket.send_multipart([b"me.event", event])
            time.sleep(0.01)
        assert _received(bad, 300) == []
        assert _received(plain, 100) == []
        assert pub.allow_list.denied >= 1  # the stranger's handshake reached ZAP and was refused there
    finally:
        for s in (good, bad, plain):
            s.close(linger=0)
        pub.close()
        ctx.term()


def test_a_taken_port_is_one_clear_error_and_stops_the_authenticator(keys):
    server, clients, _, _ = keys
    ctx = zmq.Context()
    first = secure_pub_socket(ctx, "tcp://127.0.0.1:*", server.secret, clients)
    endpoint = first.socket.getsockopt_string(zmq.LAST_ENDPOINT)
    other = zmq.Context()
    try:
        with pytest.raises(MestreamError, match="cannot bind"):
            secure_pub_socket(other, endpoint, server.secret, clients)
        # term() blocks while any socket of the context is open: the failed call must have closed them all.
        stopper = threading.Thread(target=other.term, daemon=True)
        stopper.start()
        stopper.join(5.0)
        assert not stopper.is_alive(), "the failed publisher left its socket or ZAP thread open"
    finally:
        first.close()
        ctx.term()


def test_a_real_mestream_run_with_curve_serves_events_to_the_listed_key_and_nothing_to_others(keys, assets, tmp_path):
    import subprocess
    import sys

    from stand_ins import artifact_for_tests, free_port

    server, clients, listed, stranger = keys
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    good = secure_sub_socket(ctx, endpoint, listed.secret, server.public)  # before the run binds: ZeroMQ retries
    bad = secure_sub_socket(ctx, endpoint, stranger.secret, server.public)
    plain = ctx.socket(zmq.SUB)
    plain.linger = 0
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(endpoint)
    for s in (good, bad, plain):
        s.setsockopt(zmq.RECONNECT_IVL, 20)
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(assets / "videos" / "pyfeat_single_face.mp4"),
                             "--fast", "--artifact", str(artifact_for_tests(tmp_path)), "--publish", endpoint,
                             "--curve-key", str(server.secret), "--curve-clients", str(clients)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = {"good": [], "bad": [], "plain": []}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for name, sock in (("good", good), ("bad", bad), ("plain", plain)):
                got[name] += _received(sock, 0)
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        for name, sock in (("good", good), ("bad", bad), ("plain", plain)):
            got[name] += _received(sock, 100)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        for s in (good, bad, plain):
            s.close(linger=0)
        ctx.term()
    assert proc.returncode == 0, proc.stderr.read()
    topics = [t for t, _ in got["good"]]
    assert b"me.event" in topics and b"me.status" in topics, topics
    events = [json.loads(body) for t, body in got["good"] if t == b"me.event"]
    assert all(e["schema"] == "mestream.event" for e in events)
    assert got["bad"] == [] and got["plain"] == []
