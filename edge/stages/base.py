"""The shape every stage has, so stages chain in one process (tests) or across processes (ZeroMQ).

A stage is opened once, fed messages one at a time, and closed. `process` returns the messages to pass
downstream (possibly none: a frame with no face, a window with no event yet). A source stage (capture) has
`read()` instead of being fed. Stages never know about sockets or addresses: edge/process.py hosts them.
"""

from __future__ import annotations

from typing import Protocol

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


def run_chain(source: Source, stages: list[Stage], limit: int | None = None) -> list[Message]:
    """Run a source through stages in this process, no sockets; returns what the last stage emitted.

    Status messages from any stage are collected too, so tests see face lost/found and the like.
    """
    out: list[Message] = []
    for stage in (source, *stages):
        stage.open()
    try:
        count = 0
        while limit is None or count < limit:
            msg = source.read()
            if msg is None:
                break
            count += 1
            batch = [msg]
            for stage in stages:
                passed: list[Message] = []
                for m in batch:
                    if m.topic == "status":
                        out.append(m)
                        continue
                    passed.extend(stage.process(m))
                batch = passed
            out.extend(batch)
    finally:
        for stage in (*reversed(stages), source):
            stage.close()
    return out
