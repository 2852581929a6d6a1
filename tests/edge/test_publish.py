import json

import pytest
import zmq

from edge.messages import Message, status
from edge.stages.publish import Publish
from engines.errors import MestreamError


def _free_endpoint() -> str:
    from stand_ins import free_port

    return f"tcp://127.0.0.1:{free_port()}"


def test_a_subscriber_receives_status_and_events_as_plain_json():
    endpoint = _free_endpoint()
    pub = Publish(endpoint)
    pub.open()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.")
    sub.connect(endpoint)
    try:
        got = None
        for _ in range(50):  # the slow-joiner: resend until the subscription has propagated
            pub.process(status("track", "face_found", "a face is tracked"))
            if sub.poll(100):
                got = sub.recv_multipart()
                break
        assert got is not None and got[0] == b"me.status"
        body = json.loads(got[1])
        assert body["schema"] == "mestream.status" and body["event"] == "face_found"
    finally:
        sub.close(0)
        ctx.term()
        pub.close()


def test_publishing_with_no_subscriber_never_blocks():
    pub = Publish(_free_endpoint(), hwm=1)
    pub.open()
    try:
        for i in range(5000):
            pub.process(status("x", "tick", str(i)))
        assert pub.sent["me.status"] == 5000
    finally:
        pub.close()


def test_internal_topics_are_not_published():
    pub = Publish(_free_endpoint())
    pub.open()
    try:
        assert pub.process(Message("frame", {"seq": 1})) == []
    finally:
        pub.close()


def test_the_record_appears_whole_only_when_the_publisher_closes(tmp_path):
    record = tmp_path / "r.jsonl"
    pub = Publish(_free_endpoint(), record=record)
    pub.open()
    pub.process(status("x", "one"))
    assert not record.exists() and (tmp_path / "r.jsonl.partial").exists()
    pub.close()
    assert json.loads(record.read_text())["event"] == "one"
    assert not (tmp_path / "r.jsonl.partial").exists()


def test_a_public_address_needs_explicit_permission():
    with pytest.raises(MestreamError, match="allow-public"):
        Publish("tcp://0.0.0.0:5999").open()


def test_a_taken_port_is_one_clear_error():
    endpoint = _free_endpoint()
    first = Publish(endpoint)
    first.open()
    try:
        with pytest.raises(MestreamError, match="already in use"):
            Publish(endpoint).open()
    finally:
        first.close()


def test_a_record_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(MestreamError, match="does not exist"):
        Publish(_free_endpoint(), record=tmp_path / "no" / "r.jsonl").open()


def test_with_curve_only_a_listed_subscriber_receives_events(tmp_path):
    from edge.keys import write_keypair
    from edge.security import secure_sub_socket

    server = write_keypair(tmp_path / "server", "server")
    clients = tmp_path / "clients"
    clients.mkdir()
    listed = write_keypair(tmp_path / "listed", "laptop")
    (clients / "laptop.key").write_bytes(listed.public.read_bytes())
    stranger = write_keypair(tmp_path / "stranger", "stranger")
    endpoint = _free_endpoint()
    pub = Publish(endpoint, curve_secret_key=server.secret, curve_clients=clients)
    pub.open()
    ctx = zmq.Context()
    good = secure_sub_socket(ctx, endpoint, listed.secret, server.public)
    bad = secure_sub_socket(ctx, endpoint, stranger.secret, server.public)
    plain = ctx.socket(zmq.SUB)
    plain.setsockopt(zmq.LINGER, 0)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(endpoint)
    try:
        received = []
        for _ in range(30):
            pub.process(status("x", "tick"))
            if good.poll(100):
                received.append(good.recv_multipart())
        assert received and received[0][0] == b"me.status"
        assert not bad.poll(200) and not plain.poll(200)
    finally:
        for s in (good, bad, plain):
            s.close(0)
        ctx.term()
        pub.close()


def test_curve_needs_both_the_key_and_the_client_folder(tmp_path):
    with pytest.raises(MestreamError, match="both"):
        Publish(_free_endpoint(), curve_secret_key=tmp_path / "server.key_secret")


def test_mestream_listen_prints_what_is_published_and_stops_after_count():
    import subprocess
    import sys
    import time

    endpoint = _free_endpoint()
    pub = Publish(endpoint)
    pub.open()
    listener = subprocess.Popen([sys.executable, "-m", "edge.cli", "listen", "--endpoint", endpoint, "--count", "2", "--timeout", "20"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while listener.poll() is None and time.monotonic() < deadline:
            pub.process(status("track", "face_lost", "no face"))
            time.sleep(0.05)
        out, err = listener.communicate(timeout=5)
    finally:
        if listener.poll() is None:
            listener.kill()
        pub.close()
    assert listener.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("me.status ")
    assert json.loads(lines[0].split(" ", 1)[1])["event"] == "face_lost"


def test_mestream_listen_gives_up_after_its_timeout():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--endpoint", _free_endpoint(), "--timeout", "0.3"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "nothing received" in result.stderr


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1", "tcp://127.0.0.1:abc", "tcp://127.0.0.1:99999", "ipc://"])
def test_mestream_listen_refuses_a_malformed_endpoint_in_one_line_instead_of_hanging(endpoint):
    import subprocess
    import sys

    # before the check, libzmq refused some of these at connect time and the open socket kept ctx.term() waiting
    result = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--endpoint", endpoint, "--timeout", "0.3"],
                            capture_output=True, text=True, timeout=30)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert repr(endpoint) in lines[0] and ("expected" in lines[0] or "use e.g." in lines[0])
