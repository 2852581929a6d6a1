"""The run's sources: each a name (one NATS subject token, carried as "source" on every message) and a URI.

`--source front=cam:0 --source side=rtsp://cam2/stream` or, in the topology file,

    [[sources]]
    name = "front"
    uri = "cam:0"

A source without a name is called s0, s1, ... by its position. Refused in one line each: a name that is
not a subject token, a name given twice, and one camera, stream or file given twice (two chains reading
one camera would fight over it, and one file twice would double every event).

    sources = parse_source_args(["front=cam:0", "clip.mp4"])   # (Source("front", "cam:0"), Source("s1", "clip.mp4"))
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from engines.errors import MestreamError

DEFAULT_NAME = "s0"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # one NATS subject token, as edge/nats_out.py checks it
# "name=URI": the part before the first "=" is meant as a name when it has none of a URI's or a
# GStreamer pipeline's marks; then it must be a valid name (a dotted one is refused, not read as a file).
_NOT_A_NAME = re.compile(r"[/:\\ !]")


@dataclass(frozen=True)
class Source:
    name: str
    uri: str


def parse_source_arg(text: str, index: int, where: str = "--source") -> Source:
    """One --source value: "NAME=URI" or a plain URI (named s<index>)."""
    name, sep, uri = text.partition("=")
    if sep and name and not _NOT_A_NAME.search(name):
        check_name(name, f"{where} {text}")
        if not uri:
            raise MestreamError(f"{where} {text}: no source after '{name}='; give NAME=URI, e.g. {name}=cam:0")
        return Source(name, uri)
    if not text:
        raise MestreamError(f"{where}: empty source; give cam:N, a video file, a URL or NAME=URI")
    return Source(f"s{index}", text)


def parse_source_args(values: list[str]) -> tuple[Source, ...]:
    sources = tuple(parse_source_arg(v, i) for i, v in enumerate(values))
    check_sources(sources, "--source")
    return sources


def check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise MestreamError(f"{where}: source name {name!r} must be 1-64 letters, digits, '-' or '_' "
                            "(no '.', '*', '>' or spaces: it is a NATS subject token); rename it")
    return name


def check_sources(sources: tuple[Source, ...], where: str) -> None:
    """A name given twice, or one source under two names, refused in one line naming both."""
    names: dict[str, Source] = {}
    seen: dict[str, Source] = {}
    for s in sources:
        check_name(s.name, f"{where} {s.name}={s.uri}")
        if s.name in names:
            raise MestreamError(f"{where}: source name {s.name!r} is given twice ({names[s.name].uri} and {s.uri}); "
                                "give each source its own name")
        names[s.name] = s
        key = same_source_key(s.uri)
        if key in seen:
            first = seen[key]
            raise MestreamError(f"{where}: {s.name}={s.uri} is the same source as {first.name}={first.uri}; "
                                "each camera, stream or file is read once: remove one of them")
        seen[key] = s


def same_source_key(uri: str) -> str:
    """What makes two URIs one source: cam:0 and cam:00 are one camera, a file by its real path."""
    from edge.stages.capture import source_kind

    kind = source_kind(uri)
    if kind == "camera" and uri[4:].strip().isdigit():
        return f"cam:{int(uri[4:])}"
    if kind == "file":
        return os.path.realpath(uri)
    return uri.strip()
