"""The shape every stage has, so stages chain in one process (tests) or across processes (ZeroMQ).

A stage is opened once, fed messages one at a time, and closed. `process` returns the messages to pass
downstream (possibly none: a frame with no face, a window with no event yet). A source stage (capture) has
`read()` instead of being fed. Stages never know about sockets or addresses: edge/process.py hosts them.
Stages are built by name through the one registry, edge/stages/registry.py.

Optional abilities are the protocols below; the host asks `isinstance(stage, Flushes)` and the like:
- Flushes: a stage that holds messages back (a sliding window) is flushed once at the end of the stream,
  before close, so that events for the last frames still come out.
- StatusSink: a stage that is fed status messages (the publisher); they go around every other stage.
- DecodesIntoSlots: a source that decodes its next frame straight into a buffer the host lends it (a
  slot of a shared-memory ring, edge/shared_frames.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from edge.messages import Message


class Stage(Protocol):
    name: str

    def open(self) -> None: ...

    def process(self, msg: Message) -> list[Message]: ...

    def close(self) -> None: ...


class Source(Protocol):
    name: str

    def open(self) -> None: ...

    def read(self) -> Message | None:  # None at the end of the stream
        ...

    def close(self) -> None: ...


@runtime_checkable
class Flushes(Protocol):
    def flush(self) -> list[Message]: ...


@runtime_checkable
class StatusSink(Protocol):
    consumes_status: bool  # declared True by the stage that takes status messages


@runtime_checkable
class DecodesIntoSlots(Protocol):
    # (shape, dtype) -> a buffer to decode the next frame into, or None (the source's own); None: no lender
    out_buffer: Callable[[tuple, str], Any] | None


def flush_stage(stage: Stage) -> list[Message]:
    return list(stage.flush()) if isinstance(stage, Flushes) else []


def takes_status(stage: Stage) -> bool:
    return isinstance(stage, StatusSink) and stage.consumes_status


def feed(stages: list[Stage], batch: list[Message], start: int = 0) -> list[Message]:
    """Pass messages through stages[start:]. Status messages go around stages, except a StatusSink (the
    publisher), so a face_lost from the tracker reaches subscribers."""
    for stage in stages[start:]:
        sink = takes_status(stage)
        passed: list[Message] = []
        for m in batch:
            if m.topic == "status" and not sink:
                passed.append(m)
                continue
            passed.extend(stage.process(m))
        batch = passed
    return batch


def drain(stages: list[Stage]) -> list[Message]:
    """End of stream: flush every stage in order, each flush passing through the stages after it."""
    out: list[Message] = []
    for i, stage in enumerate(stages):
        out.extend(feed(stages, flush_stage(stage), start=i + 1))
    return out


def run_chain(source: Source, stages: list[Stage], limit: int | None = None) -> list[Message]:
    """Run a source through stages in this process, no sockets; returns what the last stage emitted.

    Status messages from any stage come out too (around the stages after it, see `feed`), so tests see
    face lost/found and the like. At the
    end of the stream (not when `limit` cuts it short) every stage is flushed, as a real run drains.
    """
    out: list[Message] = []
    for stage in (source, *stages):
        stage.open()
    try:
        count = 0
        ended = False
        while limit is None or count < limit:
            msg = source.read()
            if msg is None:
                ended = True
                break
            count += 1
            out.extend(feed(stages, [msg]))
        if ended:
            out.extend(drain(stages))
    finally:
        for stage in (*reversed(stages), source):
            stage.close()
    return out
