"""publish: events and status as plain JSON on a ZeroMQ PUB socket, and optionally a JSONL record.

Topics are "me.event" (edge/schema/event.schema.json) and "me.status" (stage, event, detail, plus
metrics from the supervisor every status period; the last "metrics" of a run that reached its end has
"final": true and comes before the publisher closes, however short the run). Any language can subscribe:
a message is [topic, JSON]. PUB never waits for subscribers: with none, a slow one or a vanished one, the
pipeline runs on and each subscriber loses what does not fit its queue (hwm). The socket binds 127.0.0.1
unless explicitly allowed.

With a server key and a client-key folder (`mestream keys`), the socket speaks CURVE and only listed
subscribers receive anything (edge/security.py).

With [publish] nats set, every message also goes to the NATS server on the device, without ever making
the pipeline wait (edge/nats_out.py); its counters ride on each "metrics" status as "nats", and its state
changes (nats_connected, nats_unreachable, nats_dropping, ...) are statuses of stage "publish".

The record is written to FILE.jsonl.partial, one line flushed per message, and renamed to FILE.jsonl
on close, so a finished record is never half-written.

    Publish("tcp://127.0.0.1:5560", record=Path("events.jsonl"))
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from edge.bus import MAX_SUBSCRIPTION_BYTES, open_socket
from edge.messages import PUBLISHED_EVENT_TOPIC, PUBLISHED_STATUS_TOPIC, Message
from edge.nats_out import is_subject_name, message_id
from edge.topology import stage_options_of
from engines.errors import MestreamError

if TYPE_CHECKING:
    from edge.nats_out import NatsOutbox, NatsTarget
    from edge.process import RunOptions

STATUS_SCHEMA = "mestream.status"
NATS_TROUBLE = frozenset({"nats_unreachable", "nats_dropping", "nats_no_jetstream"})  # logged as warnings

log = logging.getLogger(__name__)


def status_json(header: dict[str, Any]) -> dict[str, Any]:
    out = {"schema": STATUS_SCHEMA, "version": 1}
    out.update({k: v for k, v in header.items() if k != "stamps"})
    out.setdefault("t_ns", time.monotonic_ns())
    return out


def _log_line(topic: str, payload: dict[str, Any]) -> None:
    """One INFO line per event and per status change that matters; the per-second metrics only at DEBUG."""
    if topic == PUBLISHED_EVENT_TOPIC:
        label = payload.get("label")
        p = (payload.get("probabilities") or {}).get(label)
        active = payload.get("action_units_active")
        log.info("event: %s %s%s%s, frames %s..%s, published %.0f ms after the offset", payload.get("kind"), label,
                 f" ({p:.2f})" if isinstance(p, (int, float)) else "",
                 f" [{' '.join(map(str, active)) or 'no AU'}]" if isinstance(active, list) else "",
                 (payload.get("onset") or {}).get("frame"),
                 (payload.get("offset") or {}).get("frame"), payload["latency_ms"].get("offset_to_result", 0.0))
    elif payload.get("event") == "metrics":
        log.debug("metrics: %s", payload.get("detail"))
    else:
        level = logging.WARNING if payload.get("event") in NATS_TROUBLE else logging.INFO
        log.log(level, "%s %s: %s", payload.get("stage"), payload.get("event"), payload.get("detail"))


@dataclass(frozen=True)
class PublishOptions:
    """[stages.publish] takes no options: where and how results go out is the topology's [publish] table."""


def build(options: dict[str, Any], run: RunOptions, resume_seq: int = 0) -> Publish:
    """The publish stage: the run's [publish] settings and --record; any [stages.publish] key is refused."""
    stage_options_of("publish", options, PublishOptions)
    pub = run.publish
    nats = None
    if pub.nats:
        from edge.nats_out import NatsTarget
        from edge.topology import device_name

        nats = NatsTarget(pub.nats, site=pub.site, device=device_name(pub.device), queue=pub.nats_queue, nkey=pub.nats_nkey)
    return Publish(pub.endpoint, record=run.record or None, allow_public=pub.allow_public, hwm=pub.hwm,
                   curve_secret_key=pub.curve_secret_key or None, curve_clients=pub.curve_clients or None,
                   nats=nats, run_id=run.run_id)


class Publish:
    """A sink Stage: returns what it sent, as messages on topics me.event / me.status."""

    name = "publish"
    consumes_status = True  # status from every stage ends here, on me.status

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5560",
        *,
        record: Path | str | None = None,
        allow_public: bool = False,
        hwm: int = 1000,
        curve_secret_key: Path | str | None = None,
        curve_clients: Path | str | None = None,
        nats: NatsTarget | None = None,
        run_id: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.record = Path(record) if record else None
        self.allow_public = allow_public
        self.hwm = hwm
        if bool(curve_secret_key) != bool(curve_clients):
            raise MestreamError("CURVE needs both the server secret key file and the client key folder; give both or neither")
        self.curve_secret_key = Path(curve_secret_key) if curve_secret_key else None
        self.curve_clients = Path(curve_clients) if curve_clients else None
        self._secure = None
        self.sent = {PUBLISHED_EVENT_TOPIC: 0, PUBLISHED_STATUS_TOPIC: 0}
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._record_file = None
        self._partial: Path | None = None
        self.nats = nats
        self.run_id = run_id or f"{time.time_ns():x}"
        self._nats_out: NatsOutbox | None = None

    def open(self) -> None:
        if self.record is not None:
            if not self.record.parent.is_dir():
                raise MestreamError(f"record file {self.record}: folder {self.record.parent} does not exist; create it or choose another path")
            self._partial = self.record.with_name(self.record.name + ".partial")
            self._record_file = open(self._partial, "w", encoding="utf-8")
        self._ctx = zmq.Context()
        try:
            if self.curve_secret_key is not None:
                from edge.bus import check_bind_endpoint
                from edge.security import secure_pub_socket

                check_bind_endpoint(self.endpoint, self.allow_public)  # encrypted or not, exposure is a choice
                self._secure = secure_pub_socket(self._ctx, self.endpoint, self.curve_secret_key, self.curve_clients, hwm=self.hwm)
                self._sock = self._secure.socket
            else:
                self._sock = open_socket(self._ctx, zmq.PUB, bind=self.endpoint, hwm=self.hwm, allow_public=self.allow_public,
                                         max_in_bytes=MAX_SUBSCRIPTION_BYTES)
        except MestreamError:
            self.close()
            raise
        if self.nats is not None:
            from edge.nats_out import NatsOutbox
            from engines.optional import require

            try:
                require("nats", "nats", package="nats-py")  # the client the outbox's thread uses
            except MestreamError:
                self.close()
                raise

            self._nats_out = NatsOutbox(self.nats, run_id=self.run_id)
            self._nats_out.start()  # connects in the background: an unreachable server is a status, not a failed start

    def process(self, msg: Message) -> list[Message]:
        out = self._nats_changes() if self._nats_out is not None else []
        out.extend(self._publish(msg))
        return out

    def _nats_changes(self) -> list[Message]:
        """The NATS outbox's state changes since the last message, published as statuses of stage publish."""
        sent = []
        for event, detail in self._nats_out.take_changes():
            sent.extend(self._publish(Message("status", {"stage": "publish", "event": event, "detail": detail,
                                                         "nats": self._nats_out.counters()})))
        return sent

    def _publish(self, msg: Message) -> list[Message]:
        if msg.topic == "event":
            payload = dict(msg.header)
            payload.pop("stamps", None)
            now = time.monotonic_ns()
            payload["t_published_ns"] = now
            latency = dict(payload.get("latency_ms", {}))
            offset_ns = int((payload.get("offset") or {}).get("t_capture_ns") or 0)
            latency["offset_to_result"] = round(max(0, now - offset_ns) / 1e6, 3) if offset_ns else 0.0
            payload["latency_ms"] = latency
            topic = PUBLISHED_EVENT_TOPIC
        elif msg.topic == "status":
            payload = status_json(msg.header)
            if self._nats_out is not None and payload.get("event") == "metrics":
                payload["nats"] = self._nats_out.counters()
            topic = PUBLISHED_STATUS_TOPIC
        else:
            return []  # frames, faces and intervals are internal
        text = json.dumps(payload, separators=(",", ":"))
        if self._nats_out is not None:
            kind = "event" if topic == PUBLISHED_EVENT_TOPIC else "status"
            source = payload.get("source")  # a source's name, checked at start (edge/sources.py); else the default
            source = source if isinstance(source, str) and is_subject_name(source) else self.nats.source
            self._nats_out.offer(kind, text.encode(), message_id(self.run_id, source, kind, payload), source)
        if self._sock is not None:
            try:
                self._sock.send_multipart([topic.encode(), text.encode()], flags=zmq.NOBLOCK)
            except zmq.Again:  # PUB drops rather than blocks; this is belt and braces
                pass
        if self._record_file is not None:
            self._record_file.write(text + "\n")
            self._record_file.flush()
        self.sent[topic] += 1
        _log_line(topic, payload)
        return [Message(topic, payload)]

    def close(self) -> None:
        if self._nats_out is not None:
            self._nats_out.close()  # publishes what is still queued, for a second at most
            self._nats_out = None
        if self._sock is not None:
            self._sock.close(linger=500)  # the last events of a file still reach connected subscribers
            self._sock = None
        if self._secure is not None:
            self._secure.authenticator.stop()
            self._secure = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        if self._record_file is not None:
            self._record_file.flush()
            os.fsync(self._record_file.fileno())
            self._record_file.close()
            self._record_file = None
            os.replace(self._partial, self.record)
