"""The preview relay: one endpoint for every process's preview tap, run by the supervisor in a thread.

Each pipeline process connects its tap (PUB) to an ipc XSUB socket in the run's private folder; the
relay forwards to an XPUB bound on the preview endpoint, which viewers (`mestream preview`) connect to.
Subscriptions travel back through the relay, so with no viewer the taps' messages are dropped at the
tap itself. The preview endpoint shows the face on camera: it binds loopback or ipc only, never a public
address, whatever --allow-public says for the results.

    relay = PreviewRelay(ctx, "ipc:///tmp/mestream-x/preview", "tcp://127.0.0.1:5561"); ...; relay.stop()
"""

from __future__ import annotations

import threading
import uuid

import zmq

from edge import bus
from engines.errors import MestreamError


def check_preview_endpoint(endpoint: str) -> None:
    """Refuse anything but tcp://<loopback>:PORT or ipc://PATH, in one line that says what to do."""
    if endpoint.startswith("inproc://"):
        raise MestreamError(f"preview endpoint {endpoint!r} is inproc; a viewer runs in another process: use tcp://127.0.0.1:PORT or ipc://PATH")
    try:
        bus.check_bind_endpoint(endpoint, allow_public=False)
    except MestreamError:
        raise MestreamError(
            f"preview endpoint {endpoint!r}: expected tcp://127.0.0.1:PORT or ipc://PATH (the preview shows faces, so it never leaves this machine)"
        ) from None


def check_preview_sources(chosen: tuple[str, ...] | list[str], names: list[str]) -> None:
    """Each source chosen for the preview (--preview-source) must be one of the run's sources: one line if not."""
    for name in chosen:
        if name not in names:
            raise MestreamError(f"--preview-source {name}: no source of that name in this run (its sources: {', '.join(names)}); "
                                "give one of them, or leave it out to preview every source")


class PreviewRelay:
    """XSUB (bound on `inside`, the taps connect) -> XPUB (bound on `outside`, viewers connect)."""

    def __init__(self, ctx: zmq.Context, inside: str, outside: str, hwm: int = 8) -> None:
        check_preview_endpoint(outside)
        self._xsub = bus.open_socket(ctx, zmq.XSUB, bind=inside, hwm=hwm)
        try:
            self._xpub = bus.open_socket(ctx, zmq.XPUB, bind=outside, hwm=hwm, max_in_bytes=bus.MAX_SUBSCRIPTION_BYTES)
        except MestreamError:
            self._xsub.close(0)
            raise
        name = f"inproc://preview-relay-{uuid.uuid4().hex}"
        self._control = ctx.socket(zmq.PAIR)
        self._control.setsockopt(zmq.LINGER, 0)
        self._control.bind(name)
        self._steer = ctx.socket(zmq.PAIR)
        self._steer.setsockopt(zmq.LINGER, 0)
        self._steer.connect(name)
        self.inside, self.outside = inside, outside
        self._thread = threading.Thread(target=self._serve, name="preview-relay", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            zmq.proxy_steerable(self._xsub, self._xpub, None, self._steer)
        except zmq.ContextTerminated:  # pragma: no cover - stop() terminates it first
            pass

    def stop(self) -> None:
        if self._thread is None:
            return
        self._control.send(b"TERMINATE")
        self._thread.join(timeout=2.0)
        self._thread = None
        for sock in (self._control, self._steer, self._xsub, self._xpub):
            sock.close(0)
