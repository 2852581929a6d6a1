"""Wire format and sockets: how a Message crosses a ZeroMQ socket, safely and without copies.

A message is multipart [topic, header JSON, *raw buffers]. The header is a JSON object with "v" (wire
version), "arrays" ([{"name", "dtype", "shape"}] in buffer order) and the stage fields. Buffers are sent
with copy=False and read back with np.frombuffer (no copy on receive either: the array views the
ZeroMQ frame). Never pickle: a header is data, never code.

Receiving is defensive because any socket may get garbage: every part count, header size, dtype, shape
and buffer size is checked and bounded before anything is allocated (the socket's MAXMSGSIZE stops an
oversized part inside libzmq, and parts are read one at a time so a message with too many parts is
discarded part by part). A bad message raises BadMessage; hosts count it and drop it (`DropLog`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

import numpy as np
import zmq

from edge.messages import WIRE_VERSION, Message
from engines.errors import MestreamError

log = logging.getLogger(__name__)

# Only plain numeric dtypes travel: no object arrays, nothing that could carry code.
ALLOWED_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64", "bool"})
# Looked up, not computed, per array: numpy's dtype.name and np.dtype(str) go through Python code that
# cost more than the rest of a small message's encoding (about half of a face message's 30 + 40 us).
_DTYPE_OF = {name: np.dtype(name) for name in ALLOWED_DTYPES}
_NAME_OF = {dtype: name for name, dtype in _DTYPE_OF.items()}


@dataclass(frozen=True)
class WireLimits:
    max_parts: int = 8  # topic + header + up to 6 arrays; real messages use at most 5
    max_header_bytes: int = 64 * 1024
    max_array_bytes: int = 3840 * 2160 * 3  # one 4K colour frame
    max_total_bytes: int = 3840 * 2160 * 3 + 1024 * 1024
    max_ndim: int = 4
    max_topic_bytes: int = 32


# What a subscriber may send a publisher: subscriptions to short topic prefixes ("me.event"). Anything
# longer is refused by libzmq from the frame header, before a byte of it is stored.
MAX_SUBSCRIPTION_BYTES = 1024  # the CURVE handshake (INITIATE, a few hundred bytes) passes the same check


class BadMessage(Exception):
    """A message off the wire that is malformed, oversized or of an unknown version. Dropped, never fatal."""


def encode(msg: Message) -> list:
    """[topic, header, *buffers] ready for send_multipart(copy=False); arrays are not copied."""
    specs = []
    buffers = []
    for name, arr in msg.arrays.items():
        dtype = _NAME_OF.get(arr.dtype)
        if dtype is None and not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))  # the wire carries native (little-endian) bytes
            dtype = _NAME_OF.get(arr.dtype)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        specs.append({"name": name, "dtype": dtype or arr.dtype.name, "shape": list(arr.shape)})
        buffers.append(memoryview(arr).cast("B") if arr.size else b"")
    header = dict(msg.header)
    header["v"] = WIRE_VERSION
    header["arrays"] = specs
    return [msg.topic.encode("ascii"), json.dumps(header, separators=(",", ":")).encode("utf-8"), *buffers]


def _buffer(part) -> memoryview:
    return part.buffer if isinstance(part, zmq.Frame) else memoryview(part)


def decode(parts: list, limits: WireLimits = WireLimits()) -> Message:
    """Check and decode [topic, header, *buffers] (bytes or zmq.Frame); raise BadMessage when wrong."""
    if len(parts) < 2:
        raise BadMessage(f"{len(parts)} part(s), expected at least 2 (topic, header)")
    if len(parts) > limits.max_parts:
        raise BadMessage(f"{len(parts)} parts, more than the limit of {limits.max_parts}")
    topic_buf = _buffer(parts[0])
    if not 0 < topic_buf.nbytes <= limits.max_topic_bytes:
        raise BadMessage(f"topic of {topic_buf.nbytes} bytes, expected 1..{limits.max_topic_bytes}")
    try:
        topic = bytes(topic_buf).decode("ascii")
    except UnicodeDecodeError:
        raise BadMessage("topic is not ASCII") from None
    header_buf = _buffer(parts[1])
    if header_buf.nbytes > limits.max_header_bytes:
        raise BadMessage(f"header of {header_buf.nbytes} bytes, more than {limits.max_header_bytes}")
    try:
        header = json.loads(bytes(header_buf))
    except (UnicodeDecodeError, ValueError):
        raise BadMessage("header is not JSON") from None
    if not isinstance(header, dict):
        raise BadMessage(f"header is a JSON {type(header).__name__}, expected an object")
    if header.get("v") != WIRE_VERSION:
        raise BadMessage(f"wire version {header.get('v')!r}, expected {WIRE_VERSION}")
    specs = header.pop("arrays", [])
    header.pop("v")
    if not isinstance(specs, list) or len(specs) != len(parts) - 2:
        raise BadMessage(f"header lists {len(specs) if isinstance(specs, list) else '?'} arrays, message has {len(parts) - 2} buffers")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for spec, part in zip(specs, parts[2:]):
        name, dtype, shape = _check_spec(spec, limits)
        buf = _buffer(part)
        dt = _DTYPE_OF[dtype]
        expected = math.prod(shape) * dt.itemsize  # exact: at most 4 sizes of at most 65536
        if expected > limits.max_array_bytes:
            raise BadMessage(f"array {name!r} of {expected} bytes, more than {limits.max_array_bytes}")
        if buf.nbytes != expected:
            raise BadMessage(f"array {name!r}: buffer of {buf.nbytes} bytes, shape {shape} {dtype} needs {expected}")
        total += expected
        if total > limits.max_total_bytes:
            raise BadMessage(f"arrays total more than {limits.max_total_bytes} bytes")
        if name in arrays:
            raise BadMessage(f"array {name!r} appears twice")
        arrays[name] = np.frombuffer(buf, dtype=dt).reshape(shape) if expected else np.zeros(shape, dt)
    return Message(topic, header, arrays)


def _check_spec(spec, limits: WireLimits) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(spec, dict):
        raise BadMessage("array spec is not an object")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise BadMessage(f"array name {name!r} is not a short string")
    if dtype not in ALLOWED_DTYPES:
        raise BadMessage(f"array {name!r} dtype {dtype!r} is not one of {sorted(ALLOWED_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_ndim
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 16 for d in shape)
    ):
        raise BadMessage(f"array {name!r} shape {shape!r} is not a list of at most {limits.max_ndim} sizes in 0..65536")
    return name, dtype, tuple(shape)


def recv_parts(sock: zmq.Socket, limits: WireLimits) -> list[zmq.Frame] | None:
    """Read one multipart message part by part, without blocking; None when nothing is waiting.

    Parts beyond the limit are read and discarded one at a time (never all held at once), then
    BadMessage is raised, so a flood of parts cannot grow memory.
    """
    try:
        first = sock.recv(zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None
    parts = [first]
    more = first.more
    extra = 0
    while more:
        part = sock.recv(copy=False)
        more = part.more
        if len(parts) < limits.max_parts:
            parts.append(part)
        else:
            extra += 1
    if extra:
        raise BadMessage(f"more than {limits.max_parts} parts ({limits.max_parts + extra})")
    return parts


def send(sock: zmq.Socket, msg: Message, flags: int = 0) -> None:
    sock.send_multipart(encode(msg), flags=flags, copy=False)


class DropLog:
    """Counts dropped messages by reason and logs at most one line per `every_s` seconds."""

    def __init__(self, where: str, every_s: float = 5.0) -> None:
        self.where = where
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self._last_log = 0.0
        self._since_log = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def drop(self, reason: str, detail: str = "", n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n
        self._since_log += n
        now = time.monotonic()
        if now - self._last_log >= self.every_s:
            log.warning("%s: dropped %d message(s) since last report (%s%s); totals %s",
                        self.where, self._since_log, reason, f": {detail}" if detail else "", self.counts)
            self._last_log = now
            self._since_log = 0


# ---- sockets ----------------------------------------------------------------------------------------

def check_endpoint(endpoint: str, bind: bool = False) -> str | None:
    """The host of a well-formed tcp://HOST:PORT endpoint (None for ipc:// and inproc://), or a MestreamError.

    libzmq takes some malformed addresses without complaint (a port out of range) and refuses others only
    at connect time, so endpoints a user typed are checked here first. Port 0 (any free port) only binds."""
    scheme, _, rest = endpoint.partition("://")
    if scheme == "ipc" and not rest:
        raise MestreamError(f"endpoint {endpoint!r} has no path; expected e.g. ipc:///tmp/mestream.sock")
    if scheme == "inproc" and not rest:
        raise MestreamError(f"endpoint {endpoint!r} has no name; expected e.g. inproc://frames")
    if scheme in ("ipc", "inproc"):
        return None
    if scheme != "tcp":
        raise MestreamError(f"endpoint {endpoint!r} has scheme {scheme!r}; expected tcp://HOST:PORT, ipc://PATH or inproc://NAME")
    parsed = urlsplit(endpoint)
    try:
        port = parsed.port
    except ValueError:
        port = None
    lowest = 0 if bind else 1
    if parsed.hostname is None or port is None or not lowest <= port <= 65535:
        raise MestreamError(f"endpoint {endpoint!r} is not tcp://HOST:PORT with a port {lowest}-65535; use e.g. tcp://127.0.0.1:5560")
    return parsed.hostname


def check_bind_endpoint(endpoint: str, allow_public: bool = False) -> None:
    """Refuse to bind a non-loopback TCP address unless the user explicitly allowed it."""
    host = check_endpoint(endpoint, bind=True)
    if host is None:
        return
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback and not allow_public:
        raise MestreamError(
            f"endpoint {endpoint!r} would be reachable from the network; bind 127.0.0.1 or pass --allow-public to expose it"
        )


def open_socket(
    ctx: zmq.Context,
    kind: int,
    *,
    bind: str | None = None,
    connect: str | None = None,
    hwm: int = 4,
    limits: WireLimits | None = None,
    allow_public: bool = False,
    max_in_bytes: int | None = None,
) -> zmq.Socket:
    """A socket with LINGER 0, small HWMs and (for receivers) MAXMSGSIZE, bound or connected.

    MAXMSGSIZE comes from `limits` (stage inputs) or `max_in_bytes` (publishers, whose peers only send
    subscriptions); libzmq checks it against each frame's declared size and drops the peer before
    allocating, so no peer can make us reserve more than that.

    Options are set before bind/connect because ZeroMQ applies most of them only to later connections.
    A taken address becomes a MestreamError naming it.
    """
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    if limits is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max(limits.max_array_bytes, limits.max_header_bytes))
    if max_in_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_in_bytes)
    try:
        if bind is not None:
            check_bind_endpoint(bind, allow_public)
            sock.bind(bind)
        if connect is not None:
            check_endpoint(connect)
            sock.connect(connect)
    except zmq.ZMQError as exc:
        sock.close(0)
        where = bind or connect
        if exc.errno == zmq.EADDRINUSE:
            raise MestreamError(f"address {where} is already in use; stop what holds it or choose another endpoint") from None
        raise MestreamError(f"cannot {'bind' if bind else 'connect'} {where}: {exc}; check the endpoint") from None
    except MestreamError:
        sock.close(0)
        raise
    return sock
