"""The preview web page: a ZeroMQ SUB thread fills a PreviewState, an http.server on 127.0.0.1 serves it.

Routes: "/" the page (index.html next to this file), "/state.json" the snapshot the page polls,
"/frame.jpg" and "/crop.jpg" the latest images, "/tiles.jpg" every source's latest frame in one grid
(edge/preview/tiles.py). With several sources, "?source=NAME" picks one (default: the server's `source`, else
the first seen); a name the run does not have is a 404 with one line naming the ones it has. The server
binds loopback only: the page shows faces.

    with PreviewServer("tcp://127.0.0.1:5561", port=8765) as server:   # port 0: any free port
        print(server.url)  # the page; server.state holds what it shows
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs

import zmq

from edge import bus
from edge.preview import PREVIEW_TOPIC_PREFIX
from edge.preview.state import PreviewState
from edge.preview.tiles import grid, tiles_jpeg
from engines.errors import MestreamError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# A preview frame is one JPEG (+ crop and landmarks): far below a raw 4K frame, the bus's limit.
_LIMITS = bus.WireLimits(max_parts=5, max_header_bytes=256 * 1024)


def page_html() -> bytes:
    return (resources.files("edge.preview") / "index.html").read_bytes()


class PreviewFeed:
    """A thread that subscribes to the preview endpoint and applies every good message to `state`."""

    def __init__(self, endpoint: str, state: PreviewState) -> None:
        self.endpoint = endpoint
        self.state = state
        self.bad = 0
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        try:
            self._sub = bus.open_socket(self._ctx, zmq.SUB, connect=endpoint, hwm=16, limits=_LIMITS)
        except MestreamError:
            self._ctx.term()
            raise
        self._sub.setsockopt(zmq.RECONNECT_IVL, 100)  # a run started later is picked up within 0.1 s
        self._sub.setsockopt(zmq.SUBSCRIBE, PREVIEW_TOPIC_PREFIX.encode())
        self._thread = threading.Thread(target=self._loop, name="preview-feed", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._sub.poll(100):
                continue
            while True:
                try:
                    parts = bus.recv_parts(self._sub, _LIMITS)
                    if parts is None:
                        break
                    self.state.apply(bus.decode(parts, _LIMITS))
                except (bus.BadMessage, ValueError, TypeError) as exc:
                    self.bad += 1  # a viewer never dies of a bad message
                    log.debug("preview: dropped a bad message: %s", exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._sub.close(0)
        self._ctx.term()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path, _, query = self.path.partition("?")
        state = self.server.state
        params = parse_qs(query)
        source = params.get("source", [""])[0] or self.server.source or None
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", page_html())
        elif path == "/state.json":
            try:
                snap = state.snapshot(source)
            except KeyError:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", (unknown_source(source, state.names()) + "\n").encode())
                return
            snap["fixed"] = bool(self.server.source)  # `mestream preview --source NAME`: no tiles, no picking
            if len(snap["sources"]) > 1 and not self.server.source:
                tiled = [name for name, _, _ in state.latest_frames()]  # tiles.jpg's order
                snap["tiles"] = dict(zip(("columns", "rows"), grid(len(tiled))), sources=tiled)
            self._send(HTTPStatus.OK, "application/json", json.dumps(snap, allow_nan=False).encode())
        elif path in ("/frame.jpg", "/crop.jpg"):
            wanted = params.get("id", [""])[0]
            frame, crop = state.images(int(wanted) if wanted.isdigit() else None, source)
            body = frame if path == "/frame.jpg" else crop
            if body:
                self._send(HTTPStatus.OK, "image/jpeg", body)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no image yet\n")
        elif path == "/tiles.jpg":
            frames = state.latest_frames()
            body = tiles_jpeg(frames) if frames else b""
            if body:
                self._send(HTTPStatus.OK, "image/jpeg", body)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"no image yet\n")
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _send(self, code: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("preview http: " + format, *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: PreviewState
    source: str  # "" = the page may show every source


def unknown_source(name: str, names: list[str]) -> str:
    return f"no source {name!r} in this run's preview (its sources: {', '.join(names)}); pick one of them"


class PreviewServer:
    """The page on http://127.0.0.1:PORT/ and the feed from `endpoint`; a context manager."""

    def __init__(self, endpoint: str, port: int = 8765, state: PreviewState | None = None, source: str = "") -> None:
        if not 0 <= port <= 65535:
            raise MestreamError(f"--port {port}: expected 0..65535 (0 = any free port)")
        self.source = source
        self.state = state or PreviewState()
        try:
            self._http = _HTTPServer((HOST, port), _Handler)
        except OSError as exc:
            raise MestreamError(f"cannot serve the preview on {HOST}:{port} ({exc.strerror}); choose another --port") from None
        self._http.state = self.state
        self._http.source = source
        try:
            self.feed = PreviewFeed(endpoint, self.state) if endpoint else None
        except MestreamError:
            self._http.server_close()
            raise
        self.port = self._http.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="preview-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=2.0)
        if self.feed is not None:
            self.feed.close()

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
