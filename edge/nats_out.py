"""NATS fan-in: every published event and status also goes to the NATS server on the device (a leaf node).

Subjects are `mestream.v1.<site>.<device>.<source>.<event|status>`; the payload is the same JSON that goes
out on ZeroMQ. Each message carries a `Nats-Msg-Id` built from the run, the source and the message's own
identity (an event's kind and frames, a status's timestamp), so a message sent again after a lost
acknowledgement is stored once (JetStream's duplicate window). The leaf's stream (STREAM, created here
when missing) keeps everything while the hub is away; the hub sources it when the link is back
(deploy/nats/).

The pipeline never waits for NATS: `offer` appends to a bounded queue and returns. A background thread
runs an asyncio loop that connects (again and again while the server is unreachable) and publishes with
JetStream acknowledgements, resending what was not acknowledged. A full queue drops the new message and
counts it; the counters and state changes go out on me.status (edge/stages/publish.py).

Needs the [nats] extra (nats-py).

    out = NatsOutbox(NatsTarget("nats://127.0.0.1:4222", site="lab", device="cam1", source="s0"), run_id="r1")
    out.start(); out.offer("event", b"{...}", "r1.s0.event.micro.10.25"); out.close()
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from engines.errors import MestreamError

log = logging.getLogger(__name__)

SUBJECT_ROOT = "mestream.v1"
STREAM = "MESTREAM"  # the leaf's stream; the hub's stream sources it (deploy/nats/hub-stream.json)
KINDS = ("event", "status")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # one subject token: no '.', no wildcards, no spaces
_SCHEMES = ("nats", "tls")

# How long close() keeps publishing what is still queued to a connected server before it gives up (counted
# as dropped): the process is past its last heartbeat then, and the supervisor's hang timeout is 5 s.
CLOSE_DRAIN_S = 1.0
# Messages published together, each awaiting its own acknowledgement.
WINDOW = 64


def check_nats_url(url: str, where: str = "nats") -> str:
    """A nats:// or tls:// URL with a host and a port; one line naming the value otherwise."""
    fix = "expected nats://HOST:PORT (e.g. nats://127.0.0.1:4222), or leave it empty to publish on ZeroMQ only"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise MestreamError(f"{where} = {url!r}: not a URL; {fix}") from None
    if parts.scheme not in _SCHEMES or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise MestreamError(f"{where} = {url!r}: not a NATS URL; {fix}")
    return url


def without_secret(url: str) -> str:
    """The URL as it may be shown and published: a password or token in it becomes ***."""
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    user = f"{parts.username}:***" if parts.password is not None else "***"
    return parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def check_nkey_seed(path: str, where: str) -> str:
    """A readable file holding a user nkey's seed (SU..., as deploy/nats/make_nkeys.py writes it): one line if not."""
    from pathlib import Path

    try:
        seed = Path(path).read_text().strip()
    except OSError as exc:
        raise MestreamError(f"{where} = {path!r}: cannot read it ({exc.strerror}); give the seed file (NAME.nk) "
                            "made by deploy/nats/make_nkeys.py") from None
    try:
        import nkeys
    except ImportError:
        raise MestreamError(f"{where}: nkeys are signed with the nkeys package, which is not installed: pip install 'mestream[nats]'") from None
    try:
        if not seed.startswith("SU"):
            raise ValueError("not a user seed")
        nkeys.from_seed(bytearray(seed.encode()))
    except Exception:  # noqa: BLE001 - nkeys raises its own error classes for each way a seed can be wrong
        raise MestreamError(f"{where} = {path!r}: not a user nkey seed (one line SU...); give the NAME.nk file "
                            "made by deploy/nats/make_nkeys.py, not its .pub") from None
    return path


def is_subject_name(value: str) -> bool:
    return bool(_NAME.match(value))


def check_subject_name(value: str, where: str) -> str:
    """A name that becomes one subject token (site, device, source): wildcards and dots are refused."""
    if not _NAME.match(value):
        raise MestreamError(f"{where} = {value!r}: a NATS subject token must be 1-64 letters, digits, '-' or '_' "
                            "(no '.', '*', '>' or spaces, which would make it a wildcard or several tokens); rename it")
    return value


def subject_of(site: str, device: str, source: str, kind: str) -> str:
    return f"{SUBJECT_ROOT}.{site}.{device}.{source}.{kind}"


@dataclass(frozen=True)
class NatsTarget:
    url: str
    site: str
    device: str
    source: str = "s0"
    queue: int = 10000  # messages held while the local server is slow or away; beyond this new ones are dropped
    nkey: str = ""  # a user nkey's seed file to sign the server's challenge with (deploy/nats/make_nkeys.py); "" = none

    def __post_init__(self) -> None:
        check_nats_url(self.url, "[publish] nats")
        check_subject_name(self.site, "[publish] site")
        check_subject_name(self.device, "[publish] device")
        check_subject_name(self.source, "source name")
        if self.queue < 1:
            raise MestreamError(f"[publish] nats_queue = {self.queue}: expected at least 1 message")


def message_id(run_id: str, source: str, kind: str, payload: dict) -> str:
    """The same message gets the same id however often it is sent; two different messages never share one."""
    if kind == "event":
        frames = [str((payload.get(p) or {}).get("frame", "")) for p in ("onset", "apex", "offset")]
        face = payload.get("face_id", "")
        return f"{run_id}.{source}.event.{payload.get('kind', '')}.{face}.{'-'.join(frames)}"
    return f"{run_id}.{source}.status.{payload.get('stage', '')}.{payload.get('event', '')}.{payload.get('t_ns', '')}"


def leaf_stream_config():
    """The leaf's stream, made by the first publisher that finds it missing: everything under mestream.v1, kept
    on disk a week at most while the hub is away, and a 2-minute window in which a resent id is a duplicate."""
    from nats.js.api import StorageType, StreamConfig

    return StreamConfig(name=STREAM, subjects=[f"{SUBJECT_ROOT}.>"], storage=StorageType.FILE,
                        duplicate_window=120.0, max_age=7 * 24 * 3600.0)


@dataclass
class _Item:
    subject: str
    data: bytes
    msg_id: str


class NatsOutbox:
    """Bounded queue + background asyncio publisher. Thread-safe `offer`; never blocks the caller."""

    _drain_deadline = 0.0
    _last_error: Exception | None = None

    def __init__(self, target: NatsTarget, *, run_id: str, connect_timeout_s: float = 2.0, ack_timeout_s: float = 2.0) -> None:
        self.target = target
        self.run_id = run_id
        self.connect_timeout_s = connect_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self._queue: collections.deque[_Item] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready = threading.Event()
        self.state = "connecting"  # connecting | connected | unreachable | closed
        self.stored = True  # False when the server has no JetStream: published, but nothing keeps it for the hub
        self.published = 0
        self.dropped = 0  # queue full, or still queued when the run closed
        self.failures = 0  # connection attempts and publishes that failed (each one retried)
        self._changes: list[tuple[str, str]] = []  # (event, detail) for me.status, taken by the publish stage

    # -- the pipeline's side ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nats-out", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def offer(self, kind: str, data: bytes, msg_id: str, source: str = "") -> bool:
        """Queue one message on its source's subject (source: a checked name; "" = the target's)."""
        t = self.target
        item = _Item(subject_of(t.site, t.device, source or t.source, kind), data, msg_id)
        with self._lock:
            if len(self._queue) >= t.queue:
                self.dropped += 1
                first = self.dropped == 1
            else:
                self._queue.append(item)
                first = None
        if first:
            self._note("nats_dropping", f"NATS queue full ({t.queue} messages, server {self.state}): new messages are dropped "
                       "and counted; ZeroMQ and --record still get them")
        if first is None and self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop has closed
                pass
        return first is None

    def counters(self) -> dict:
        with self._lock:
            pending = len(self._queue)
        return {"url": without_secret(self.target.url), "state": self.state, "stored": self.stored, "published": self.published,
                "pending": pending, "dropped": self.dropped, "failures": self.failures}

    def take_changes(self) -> list[tuple[str, str]]:
        with self._lock:
            out, self._changes = self._changes, []
        return out

    def close(self, drain_s: float = CLOSE_DRAIN_S) -> None:
        if self._thread is None:
            return
        if self.state != "connected":
            drain_s = 0.0  # nothing would get through: do not hold the process's exit for it
        self._drain_deadline = time.monotonic() + drain_s
        self._stopping = True
        if self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(drain_s + 0.5)  # a daemon thread: one stuck in a connect attempt ends with the process
        self._thread = None
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self.dropped += left
        if left:
            log.warning("NATS: %d messages still queued at close were not published (server %s)", left, self.state)
        self.state = "closed"

    # -- the background thread ----------------------------------------------------------------------------
    def _note(self, event: str, detail: str) -> None:
        """A state change for me.status (the publish stage logs it there)."""
        with self._lock:
            self._changes.append((event, detail))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        import nats  # the [nats] extra; edge/stages/publish.py checked it is installed before starting us

        self._wake = asyncio.Event()
        self._stop = asyncio.Event()  # only close() sets it: a new message must not cut a reconnect backoff short
        self._ready.set()
        nc = None
        backoff = 0.25
        while not self._done():
            if nc is None or nc.is_closed:
                nc = await self._connect(nats)
                if nc is None:
                    await self._sleep(backoff, self._stop)
                    backoff = min(backoff * 2, 2.0)  # a local server: a try every 2 s costs nothing
                    continue
                backoff = 0.25
            batch = self._peek(WINDOW)
            if not batch:
                self._wake.clear()
                if not self._peek(1):
                    await self._sleep(0.5)
                continue
            ok = await self._send(nc, batch)
            if ok < len(batch):
                await self._sleep(0.2)
        if nc is not None and not nc.is_closed:
            self.state = "closed"  # our own close is no outage: no "went away" status
            try:
                await asyncio.wait_for(nc.close(), 0.5)
            except Exception:  # noqa: BLE001, S110 - closing a half-dead connection: nothing more to do
                pass

    def _done(self) -> bool:
        if not self._stopping:
            return False
        with self._lock:
            empty = not self._queue
        return empty or time.monotonic() > self._drain_deadline

    async def _sleep(self, seconds: float, until: asyncio.Event | None = None) -> None:
        try:
            await asyncio.wait_for((until or self._wake).wait(), seconds)
        except TimeoutError:
            pass

    def _peek(self, n: int) -> list[_Item]:
        with self._lock:
            return [self._queue[i] for i in range(min(n, len(self._queue)))]

    async def _connect(self, nats):
        url = without_secret(self.target.url)
        try:
            # no reconnects inside the client (and its first connect gives up after two tries, where 0 would
            # mean forever): this loop reconnects with its own backoff and says so once on me.status
            nc = await nats.connect(self.target.url, connect_timeout=self.connect_timeout_s, allow_reconnect=False,
                                    max_reconnect_attempts=1, reconnect_time_wait=0.1, nkeys_seed=self.target.nkey or None,
                                    name=f"mestream {self.target.site}.{self.target.device}",
                                    error_cb=self._on_error, disconnected_cb=self._on_disconnected)
        except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS or auth: all mean "not now", and are retried
            self.failures += 1
            if self.state != "unreachable":
                self.state = "unreachable"
                why = _why(self._last_error or exc)
                self._note("nats_unreachable", f"NATS server {url} unreachable ({why}); retrying, events still go out "
                           "on ZeroMQ and --record, NATS keeps them queued")
            return None
        self._js = nc.jetstream(timeout=self.ack_timeout_s)
        try:
            self.stored = await self._ensure_stream()
        except Exception as exc:  # noqa: BLE001 - refused by permissions, a stream of that name with other subjects, ...
            self.failures += 1
            self._note("nats_unreachable", f"NATS server {url}: cannot find or make the stream {STREAM} ({_why(exc)}); "
                       "retrying, messages stay queued")
            self.state = "unreachable"
            await nc.close()
            return None
        self.state = "connected"
        self._note("nats_connected", f"NATS connected to {url}; publishing on {subject_of(self.target.site, self.target.device, self.target.source, '{event,status}')}"
                   + ("" if self.stored else " (no JetStream there: nothing is kept while the hub is away)"))
        return nc

    async def _ensure_stream(self) -> bool:
        from nats.errors import NoRespondersError, TimeoutError
        from nats.js.errors import NotFoundError, ServiceUnavailableError

        try:
            await self._js.stream_info(STREAM)
            return True
        except NotFoundError:
            pass
        except (NoRespondersError, ServiceUnavailableError, TimeoutError):
            self._note("nats_no_jetstream", f"NATS server {without_secret(self.target.url)} has no JetStream: events are published but not stored "
                       "for the hub; enable jetstream on the leaf (deploy/nats/leaf.conf)")
            return False
        await self._js.add_stream(leaf_stream_config())
        return True

    async def _send(self, nc, batch: list[_Item]) -> int:
        """Publish a window; drop from the queue's head what was acknowledged, in order. Returns how many."""
        if self.stored:
            results = await asyncio.gather(*(self._js.publish(it.subject, it.data, headers={"Nats-Msg-Id": it.msg_id})
                                             for it in batch), return_exceptions=True)
        else:
            results = []
            for it in batch:
                try:
                    await nc.publish(it.subject, it.data, headers={"Nats-Msg-Id": it.msg_id})
                    results.append(None)
                except Exception as exc:  # noqa: BLE001 - kept, like gather's, and the item is resent
                    results.append(exc)
        done = 0
        for r in results:
            if isinstance(r, BaseException):
                break
            done += 1
        with self._lock:
            for _ in range(done):
                self._queue.popleft()
        self.published += done
        if done < len(batch):
            self.failures += 1
            if self.state == "connected" and not nc.is_connected:
                self.state = "unreachable"
        return done

    async def _on_error(self, exc: Exception) -> None:
        """nats-py reports each failed try here: kept as the reason the state change gives, said once."""
        self._last_error = exc

    async def _on_disconnected(self) -> None:
        if self.state == "connected":
            self.state = "unreachable"
            self._note("nats_unreachable", f"NATS server {without_secret(self.target.url)} went away; reconnecting, messages stay queued")
        if self._wake is not None:
            self._wake.set()



def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text.splitlines()[0][:120]
