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
