import json

import numpy as np
import pytest
import zmq

from edge.bus import (
    ALLOWED_DTYPES,
    BadMessage,
    DropLog,
    WireLimits,
    check_bind_endpoint,
    check_endpoint,
    decode,
    encode,
    open_socket,
    recv_parts,
    send,
)
from edge.messages import WIRE_VERSION, Message
from engines.errors import MestreamError


def _bytes(parts):
    return [bytes(p) for p in parts]


def test_a_message_round_trips_with_its_arrays_and_header():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    lm = np.random.default_rng(0).random((7, 2), dtype=np.float32)
    msg = Message("frame", {"seq": 3, "t_capture_ns": 10, "box": [1, 2, 3, 4]}, {"image": img, "landmarks": lm})
    out = decode(_bytes(encode(msg)))
    assert out.topic == "frame" and out.header == msg.header
    np.testing.assert_array_equal(out.arrays["image"], img)
    np.testing.assert_array_equal(out.arrays["landmarks"], lm)
    assert out.arrays["landmarks"].dtype == np.float32


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
def test_every_allowed_dtype_round_trips_under_its_name_and_byte_order(dtype):
    arr = (np.arange(12) % 2 if dtype == "bool" else np.arange(12)).astype(dtype).reshape(3, 4)
    parts = encode(Message("face", {}, {"a": arr}))
    assert json.loads(bytes(parts[1]))["arrays"][0]["dtype"] == dtype
    out = decode(_bytes(parts)).arrays["a"]
    assert out.dtype == arr.dtype and out.shape == (3, 4)
    np.testing.assert_array_equal(out, arr)
    swapped = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    np.testing.assert_array_equal(decode(_bytes(encode(Message("face", {}, {"a": swapped})))).arrays["a"], arr)


def test_encoding_does_not_copy_the_image_buffer():
    img = np.zeros((480, 640, 3), np.uint8)
    parts = encode(Message("frame", {"seq": 0}, {"image": img}))
    assert isinstance(parts[2], memoryview) and np.shares_memory(np.asarray(parts[2]), img)


def test_non_contiguous_arrays_are_sent_as_their_values():
    img = np.arange(24, dtype=np.uint8).reshape(4, 6)[:, ::2]
    out = decode(_bytes(encode(Message("face", {}, {"crop": img}))))
    np.testing.assert_array_equal(out.arrays["crop"], img)


def _header(**over):
    h = {"v": WIRE_VERSION, "arrays": [{"name": "image", "dtype": "uint8", "shape": [2, 2]}]}
    h.update(over)
    return json.dumps(h).encode()


@pytest.mark.parametrize(
    "parts, reason",
    [
        ([b"frame"], "at least 2"),
        ([b"frame", b"not json", b"1234"], "not JSON"),
        ([b"frame", b"[1, 2]", b"1234"], "JSON list"),
        ([b"frame", _header(v=99), b"1234"], "wire version 99"),
        ([b"frame", _header(), b"123"], "needs 4"),
        ([b"frame", _header(), b"1234", b"x"], "has 2 buffers"),
        ([b"frame", _header(arrays=[{"name": "image", "dtype": "object", "shape": [2, 2]}]), b"1234"], "dtype 'object'"),
        ([b"frame", _header(arrays=[{"name": "image", "dtype": "uint8", "shape": [-2, -2]}]), b"1234"], "shape"),
        ([b"frame", _header(arrays=[{"name": "image", "dtype": "uint8", "shape": [1, 1, 1, 1, 1]}]), b"1"], "shape"),
        ([b"frame", _header(arrays=[{"name": "image", "dtype": "uint8", "shape": [65536, 65536]}]), b"1"], "more than"),
        ([b"\xff\xfe", _header(), b"1234"], "not ASCII"),
        ([b"frame", b"{" + b" " * 70000 + b"}", b"1234"], "header of"),
        ([b"frame", _header()] + [b"1234"] * 20, "parts"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(parts, reason):
    with pytest.raises(BadMessage, match=reason):
        decode(parts, WireLimits())


def test_the_wire_header_never_unpickles():
    import pickle

    with pytest.raises(BadMessage):
        decode([b"frame", pickle.dumps({"v": 1, "arrays": []})])


def test_drops_are_counted_by_reason_and_logged_at_most_once_per_interval(caplog):
    drops = DropLog("test", every_s=60)
    with caplog.at_level("WARNING"):
        for _ in range(1000):
            drops.drop("garbage")
        drops.drop("version", n=5)
    assert drops.counts == {"garbage": 1000, "version": 5} and drops.total == 1005
    assert len(caplog.records) == 1


def test_a_socket_pair_carries_messages_and_discards_floods_of_parts():
    ctx = zmq.Context()
    limits = WireLimits(max_parts=4)
    rx = open_socket(ctx, zmq.PULL, bind="inproc://bus-test", limits=limits)
    tx = open_socket(ctx, zmq.PUSH, connect="inproc://bus-test")
    try:
        tx.send_multipart([b"frame", _header()] + [b"1234"] * 10)
        send(tx, Message("frame", {"seq": 1}, {"image": np.ones((2, 2), np.uint8)}))
        assert rx.poll(2000)
        with pytest.raises(BadMessage, match="more than 4 parts"):
            recv_parts(rx, limits)
        assert rx.poll(2000)
        msg = decode(recv_parts(rx, limits), limits)
        assert msg.header["seq"] == 1 and msg.arrays["image"].sum() == 4
        assert recv_parts(rx, limits) is None
    finally:
        rx.close(0)
        tx.close(0)
        ctx.term()


def test_public_tcp_binds_are_refused_unless_allowed():
    check_bind_endpoint("tcp://127.0.0.1:5560")
    check_bind_endpoint("ipc:///tmp/x.sock")
    with pytest.raises(MestreamError, match="--allow-public"):
        check_bind_endpoint("tcp://0.0.0.0:5560")
    with pytest.raises(MestreamError, match="--allow-public"):
        check_bind_endpoint("tcp://*:5560")
    check_bind_endpoint("tcp://0.0.0.0:5560", allow_public=True)
    with pytest.raises(MestreamError, match="scheme"):
        check_bind_endpoint("udp://127.0.0.1:1")


def test_endpoints_are_checked_before_libzmq_sees_them():
    assert check_endpoint("tcp://127.0.0.1:5560") == "127.0.0.1"
    assert check_endpoint("tcp://[::1]:5560") == "::1"
    assert check_endpoint("ipc:///tmp/x.sock") is None and check_endpoint("inproc://frames") is None
    assert check_endpoint("tcp://127.0.0.1:0", bind=True) == "127.0.0.1"  # any free port: binds only
    for bad in ("tcp://127.0.0.1", "tcp://127.0.0.1:abc", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://:5560"):
        with pytest.raises(MestreamError, match="port 1-65535"):
            check_endpoint(bad)
    with pytest.raises(MestreamError, match="no path"):
        check_endpoint("ipc://")
    ctx = zmq.Context()
    try:
        with pytest.raises(MestreamError, match="port 1-65535"):
            open_socket(ctx, zmq.SUB, connect="tcp://127.0.0.1:99999")
    finally:
        ctx.term()  # returns: the refused socket was closed


def test_a_taken_port_is_one_clear_error():
    ctx = zmq.Context()
    first = open_socket(ctx, zmq.PUB, bind="tcp://127.0.0.1:0")
    endpoint = first.getsockopt(zmq.LAST_ENDPOINT).decode()
    try:
        with pytest.raises(MestreamError, match="already in use"):
            open_socket(ctx, zmq.PUB, bind=endpoint)
    finally:
        first.close(0)
        ctx.term()
