"""CURVE encryption and client authentication for the result stream (ZeroMQ "ironhouse").

The publisher holds a server key pair; only subscribers whose public key sits in an allow-list directory
(one NAME.key per client, made by `mestream keys`) get through the ZAP handshake. Everyone else, including
plain unencrypted subscribers, receives nothing. Results carry biometric-derived data, so this is what an
endpoint that leaves the device should use; ipc:// and loopback endpoints rely on the host instead.

    pub = secure_pub_socket(ctx, "tcp://0.0.0.0:5560", Path("/etc/mestream/keys/server.key_secret"),
                            Path("/etc/mestream/keys/clients"))
    pub.socket.send_multipart([b"me.event", payload]); ...; pub.close()

    sub = secure_sub_socket(ctx, "tcp://device:5560", Path("laptop.key_secret"), Path("server.key"))
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from edge.bus import MAX_SUBSCRIPTION_BYTES
from edge.keys import read_allowed_clients, read_keypair, read_public_key
from engines.errors import MestreamError

log = logging.getLogger(__name__)

ZAP_DOMAIN = "mestream"
DENIAL_LOG_EVERY = 100  # one log line per this many refused handshakes: a scanner must not flood the journal


@dataclass
class AllowList:
    """The ZAP credentials callback: a client's Z85 public key is in the set, or it is refused."""

    keys: frozenset[bytes]
    denied: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        with self._lock:
            self.denied += 1
            count = self.denied
        if count % DENIAL_LOG_EVERY == 1:
            log.warning("refused a subscriber with an unlisted CURVE key %s (%d refused so far)", key[:8].decode(), count)
        return False


@dataclass
class SecurePublisher:
    """A bound CURVE PUB socket and the ZAP authenticator thread that guards it; close() stops both."""

    socket: zmq.Socket
    authenticator: object  # zmq.auth.thread.ThreadAuthenticator
    allow_list: AllowList

    def close(self) -> None:
        self.socket.close(linger=0)
        self.authenticator.stop()


def secure_pub_socket(
    ctx: zmq.Context,
    endpoint: str,
    server_secret_file: Path,
    allowed_clients_dir: Path,
    *,
    hwm: int = 1000,
) -> SecurePublisher:
    """A PUB socket bound to endpoint that speaks CURVE and accepts only the listed client keys.

    The ZAP handler starts before the bind and the socket enforces it (ZAP_ENFORCE_DOMAIN), so there is
    no moment where a client could connect unauthenticated.
    """
    from zmq.auth.thread import ThreadAuthenticator

    if not zmq.has("curve"):
        raise MestreamError(f"libzmq {zmq.zmq_version()} has no CURVE support; reinstall pyzmq from PyPI")
    public, secret = read_keypair(Path(server_secret_file))
    allow_list = AllowList(frozenset(read_allowed_clients(Path(allowed_clients_dir))))
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("edge.security.zap"))
    auth.start()
    auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=allow_list)
    sock = ctx.socket(zmq.PUB)
    try:
        sock.linger = 0
        sock.sndhwm = hwm
        sock.maxmsgsize = MAX_SUBSCRIPTION_BYTES  # subscribers send only short subscriptions
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no ZAP answer -> no connection, never "allow all"
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        auth.stop()
        raise MestreamError(f"result endpoint {endpoint}: cannot bind ({exc}); pick a free port or another address") from None
    log.info("results on %s with CURVE, %d allowed subscriber key(s)", endpoint, len(allow_list.keys))
    return SecurePublisher(sock, auth, allow_list)


def secure_sub_socket(
    ctx: zmq.Context,
    endpoint: str,
    client_secret_file: Path,
    server_public_file: Path,
    topics: tuple[bytes, ...] = (b"me.",),
) -> zmq.Socket:
    """A SUB socket that connects to a CURVE publisher as the client whose key pair is given."""
    public, secret = read_keypair(Path(client_secret_file))
    server_public = read_public_key(Path(server_public_file))
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server_public
    for topic in topics:
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError:
        sock.close(0)  # an open socket would make the caller's ctx.term() wait forever
        raise
    return sock
