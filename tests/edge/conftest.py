"""Fixtures for tests of the process runtime: a supervisor watched in a thread, and ZeroMQ teardown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import zmq

from edge.supervisor import Supervisor


@dataclass
class Supervised:
    """A started Supervisor whose watch loop runs in `thread`; `code` is run()'s return once it ended."""

    sup: Supervisor
    thread: threading.Thread
    result: dict = field(default_factory=dict)

    @property
    def code(self) -> int | None:
        return self.result.get("code")

    def stop(self) -> None:
        """Ask the watch loop to stop, as Ctrl-C does; it stops every process and removes its folder."""
        self.sup.stopping = True
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.fixture
def supervise():
    """supervise(topology, run_options) -> Supervised: started, watched in a thread, and stopped at the end of
    the test, which then checks that no stage process is left and the private folder is gone."""
    started: list[Supervised] = []

    def start(topo, run, **kwargs) -> Supervised:
        sup = Supervisor(topo, run, **kwargs)
        sup.start()
        result: dict = {}
        watched = Supervised(sup, threading.Thread(target=lambda: result.setdefault("code", sup.run()), daemon=True), result)
        started.append(watched)
        watched.thread.start()
        return watched

    yield start
    for watched in started:
        watched.stop()
        assert not any(c.alive for c in watched.sup.children)
        assert watched.sup.workdir is None


@pytest.fixture
def zmq_ctx():
    """A ZeroMQ context whose sockets are all closed (linger 0) and which is terminated after the test."""
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)
