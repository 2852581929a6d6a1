"""The topology: which stages run in which OS process, in what order, with which queues and options.

One commented TOML file (edge/topology.toml is the default) is loaded into the frozen dataclasses below.
Anything unexpected is refused at start with one line that names it: an unknown key or stage, a wrong
type, an impossible value (a negative interval, a queue of zero). Processes form a line: each one's
output goes to the next one's input; stages never see addresses.

    topology = load_topology(Path("edge/topology.toml"))
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edge.sources import Source, check_sources
from edge.stages.registry import SOURCE_STAGES, STAGES
from engines.errors import MestreamError

POLICIES = ("drop", "block")
DEVICES = ("auto", "gpu", "cpu")  # [stages.classify] device: where infer runs (edge/gpu.py chooses for "auto")
DEVICE_STAGES = frozenset({"classify"})  # the stages that have a GPU path


@dataclass(frozen=True)
class RuntimeConfig:
    heartbeat_s: float = 0.5  # how often every process says it is alive (and reports its counters)
    hang_timeout_s: float = 5.0  # no heartbeat for this long after start-up: killed and restarted
    startup_timeout_s: float = 60.0  # opening stages (MediaPipe, an engine) may take this long
    restart_backoff_min_s: float = 0.25  # first restart delay; doubles on each crash in a row
    restart_backoff_max_s: float = 10.0  # ... up to this
    stable_after_s: float = 10.0  # a process alive this long has its backoff reset
    stop_timeout_s: float = 2.5  # SIGTERM, then SIGKILL after this; the whole stop stays under 3 s
    status_every_s: float = 1.0  # metrics published on me.status this often
    shared_frames: bool = True  # frames go from capture to track through shared memory on this host (edge/shared_frames.py)
    fast_nice: int = 10  # under --fast, added to the niceness of the processes that handle every frame


@dataclass(frozen=True)
class PublishConfig:
    endpoint: str = "tcp://127.0.0.1:5560"
    allow_public: bool = False  # binding a non-loopback address needs this set on purpose
    hwm: int = 1000  # per subscriber; a slow subscriber loses events beyond this, the pipeline never waits
    curve_secret_key: str = ""  # server NAME.key_secret (mestream keys): results encrypted with CURVE ...
    curve_clients: str = ""  # ... and only subscribers whose NAME.key is in this folder get them
    preview: str = ""  # "" = off; else frames/crops/signal/events for `mestream preview` (loopback or ipc only)
    preview_fps: float = 10.0  # preview frames (JPEG) per second at most: people need no more, the pipeline pays per frame
    preview_sources: tuple[str, ...] = ()  # () = every source; else only these sources' frames and signal (fewer JPEGs)
    nats: str = ""  # "" = off; else the NATS server on this device (a leaf node), e.g. "nats://127.0.0.1:4222" (edge/nats_out.py)
    site: str = "site"  # subject mestream.v1.<site>.<device>.<source>.<event|status>: one token each
    device: str = ""  # "" = this host's name (made a valid subject token)
    nats_queue: int = 10000  # messages held for NATS while its server is slow or away; beyond this new ones are dropped (counted)
    nats_nkey: str = ""  # seed file (NAME.nk, deploy/nats/make_nkeys.py) to log in to the NATS server with; "" = none, or the URL's user:password


@dataclass(frozen=True)
class ProcessConfig:
    name: str
    stages: tuple[str, ...]
    queue: int = 8  # messages waiting at the entrance of this process
    hwm: int = 2  # ZeroMQ high-water mark of its input socket
    policy: str = "drop"  # "drop": when the entrance is full, drop a whole run and mark a gap; "block": back-pressure
    input: str = ""  # "" = an ipc socket in the run's private directory
    nice: int = 0  # added to the process's niceness (0..19): higher yields the CPU to the others first


@dataclass(frozen=True)
class Topology:
    runtime: RuntimeConfig
    publish: PublishConfig
    processes: tuple[ProcessConfig, ...]
    stage_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # [stages.NAME] tables, checked by each stage
    sources: tuple[Source, ...] = ()  # [[sources]] (edge/sources.py); --source on the command line replaces them

    def stage_names(self) -> list[str]:
        return [s for p in self.processes for s in p.stages]


def default_topology_path() -> Path:
    return Path(str(resources.files("edge") / "topology.toml"))


def load_topology(path: Path | None = None) -> Topology:
    path = Path(path) if path is not None else default_topology_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MestreamError(f"topology {path}: cannot read it ({exc.strerror}); pass an existing TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MestreamError(f"topology {path}: not valid TOML ({exc}); fix the syntax") from None
    return parse_topology(data, str(path))


def parse_topology(data: dict[str, Any], where: str = "topology") -> Topology:
    _reject_unknown(data, {"runtime", "publish", "process", "stages", "sources"}, where)
    runtime = _build(RuntimeConfig, data.get("runtime", {}), f"{where} [runtime]")
    publish = _build(PublishConfig, data.get("publish", {}), f"{where} [publish]")
    raw_procs = data.get("process")
    if not isinstance(raw_procs, list) or not raw_procs:
        raise MestreamError(f"{where}: no [[process]] tables; list the processes in order, e.g. capture, track, spot, infer")
    processes = tuple(_build(ProcessConfig, p, f"{where} [[process]] #{i + 1}") for i, p in enumerate(raw_procs))
    stage_options = data.get("stages", {})
    if not isinstance(stage_options, dict) or not all(isinstance(v, dict) for v in stage_options.values()):
        raise MestreamError(f"{where} [stages]: expected tables [stages.NAME] of options")
    topo = Topology(runtime, publish, processes, stage_options, _sources(data.get("sources", []), where))
    _check(topo, where)
    return topo


def _sources(raw: Any, where: str) -> tuple[Source, ...]:
    """[[sources]] tables (name optional: s0, s1, ... by position), checked as --source values are."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise MestreamError(f"{where} sources: expected [[sources]] tables with uri (and name)")
    sources = []
    for i, table in enumerate(raw):
        label = f"{where} [[sources]] #{i + 1}"
        _reject_unknown(table, {"name", "uri"}, label)
        uri = coerce(table.get("uri", ""), "str", f"{label} uri")
        if not uri:
            raise MestreamError(f"{label}: no uri; add uri = \"cam:0\" (or a file, a URL)")
        name = coerce(table.get("name", f"s{i}"), "str", f"{label} name")
        sources.append(Source(name, uri))
    check_sources(tuple(sources), f"{where} [[sources]]")
    return tuple(sources)


def _check(topo: Topology, where: str) -> None:
    r = topo.runtime
    if not 0 <= r.fast_nice <= 19:
        raise MestreamError(f"{where} [runtime] fast_nice = {r.fast_nice}; expected 0..19 (0 = no change under --fast)")
    for f in dataclasses.fields(r):
        if f.name.endswith("_s") and getattr(r, f.name) <= 0:
            raise MestreamError(f"{where} [runtime] {f.name} = {getattr(r, f.name)}: expected a positive number of seconds")
    if r.restart_backoff_min_s > r.restart_backoff_max_s:
        raise MestreamError(f"{where} [runtime] restart_backoff_min_s {r.restart_backoff_min_s} > restart_backoff_max_s {r.restart_backoff_max_s}; swap them")
    if r.hang_timeout_s <= r.heartbeat_s * 2:
        raise MestreamError(f"{where} [runtime] hang_timeout_s {r.hang_timeout_s} must exceed twice heartbeat_s {r.heartbeat_s}, or live stages look hung")
    if topo.publish.hwm < 1:
        raise MestreamError(f"{where} [publish] hwm = {topo.publish.hwm}: expected at least 1")
    if bool(topo.publish.curve_secret_key) != bool(topo.publish.curve_clients):
        raise MestreamError(f"{where} [publish]: curve_secret_key and curve_clients go together; set both (CURVE) or neither")
    if not 0 < topo.publish.preview_fps <= 30:
        raise MestreamError(f"{where} [publish] preview_fps = {topo.publish.preview_fps}: expected 0 < fps <= 30 (a preview, not a second video stream)")
    if topo.publish.nats:
        check_nats(topo.publish, where)
    names = set()
    seen_stages: set[str] = set()
    for i, p in enumerate(topo.processes):
        label = f"{where} process {p.name!r}"
        if not p.name.isidentifier():
            raise MestreamError(f"{label}: name must be a plain word (letters, digits, _)")
        if p.name in names:
            raise MestreamError(f"{label}: the name appears twice; give every process its own name")
        names.add(p.name)
        if not p.stages:
            raise MestreamError(f"{label}: stages is empty; list at least one of {sorted(STAGES)}")
        for s in p.stages:
            if s not in STAGES:
                raise MestreamError(f"{label}: unknown stage {s!r}; expected one of {sorted(STAGES)}")
            if s in seen_stages:
                raise MestreamError(f"{label}: stage {s!r} appears twice; each stage runs once")
            seen_stages.add(s)
            if s in SOURCE_STAGES and (i, p.stages.index(s)) != (0, 0):
                raise MestreamError(f"{label}: stage {s!r} is a source; it must be the first stage of the first process")
        if p.queue < 1 or p.queue > 10000:
            raise MestreamError(f"{label}: queue = {p.queue}; expected 1..10000 messages")
        if p.hwm < 1 or p.hwm > 10000:
            raise MestreamError(f"{label}: hwm = {p.hwm}; expected 1..10000 messages")
        if p.policy not in POLICIES:
            raise MestreamError(f"{label}: policy = {p.policy!r}; expected one of {list(POLICIES)}")
        if not 0 <= p.nice <= 19:
            raise MestreamError(f"{label}: nice = {p.nice}; expected 0..19 (0 = as the supervisor, 19 = yields to everything)")
        if p.input and not p.input.startswith(("ipc://", "tcp://")):
            raise MestreamError(f"{label}: input = {p.input!r}; expected ipc://PATH or tcp://127.0.0.1:PORT, or leave it out")
    first = topo.processes[0].stages[0]
    if first not in SOURCE_STAGES:
        raise MestreamError(f"{where}: the first stage is {first!r}; the pipeline must start with one of {sorted(SOURCE_STAGES)}")
    for name in topo.stage_options:
        if name not in seen_stages:
            raise MestreamError(f"{where} [stages.{name}]: no process runs a stage {name!r}; remove the table or add the stage")
        device = topo.stage_options[name].get("device")
        if device is not None and name not in DEVICE_STAGES:
            raise MestreamError(f"{where} [stages.{name}] device = {device!r}: only {sorted(DEVICE_STAGES)} can run on a GPU; remove the key")
        if device is not None and device not in DEVICES:
            raise MestreamError(f"{where} [stages.{name}] device = {device!r}: expected one of {list(DEVICES)}")


def check_nats(pub: PublishConfig, where: str) -> None:
    from edge.nats_out import check_nats_url, check_subject_name

    check_nats_url(pub.nats, f"{where} [publish] nats")
    check_subject_name(pub.site, f"{where} [publish] site")
    if pub.device:
        check_subject_name(pub.device, f"{where} [publish] device")
    if pub.nats_queue < 1:
        raise MestreamError(f"{where} [publish] nats_queue = {pub.nats_queue}: expected at least 1 message")
    if pub.nats_nkey:
        from edge.nats_out import check_nkey_seed

        check_nkey_seed(pub.nats_nkey, f"{where} [publish] nats_nkey")


def device_name(configured: str) -> str:
    """[publish] device, or this host's name as one NATS subject token (other characters become '-')."""
    if configured:
        return configured
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "device"


def _reject_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise MestreamError(f"{where}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - known)
    if unknown:
        raise MestreamError(f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(known)}")


def _build(cls, table: dict[str, Any], where: str):
    """A frozen dataclass from a TOML table: unknown keys and wrong types refused, defaults from the class."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(table, set(fields), where)
    kwargs = {}
    for key, value in table.items():
        kwargs[key] = coerce(value, fields[key].type, f"{where} {key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field (e.g. a process name) is missing
        missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs]
        raise MestreamError(f"{where}: missing {missing[0] if missing else exc}; add it") from None


def coerce(value: Any, type_name: Any, where: str) -> Any:
    """Check one TOML value against a field's annotation (as a string: from __future__ annotations)."""
    t = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    if t == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif t == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer"
    elif t == "bool":
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif t == "str":
        if isinstance(value, str):
            return value
        expected = "a string"
    elif t.startswith("tuple[str"):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = "a list of strings"
    else:  # pragma: no cover - only the annotations above are used
        raise TypeError(f"unsupported field type {t}")
    raise MestreamError(f"{where} = {value!r}: expected {expected}")


def stage_options_of(stage: str, table: dict[str, Any], cls) -> Any:
    """A [stages.NAME] table as that stage's frozen options dataclass (unknown keys and wrong types refused)."""
    return _build(cls, table, f"topology [stages.{stage}]")
