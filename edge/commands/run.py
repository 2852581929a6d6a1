"""`mestream run`: the live pipeline, from a camera/file/URL to micro-expression events on a PUB socket.

    mestream run --source cam:0
    mestream run --source clip.mp4 --fast --record events.jsonl
    mestream run --source front=cam:0 --source side=rtsp://192.168.1.20/stream   # a chain per source, one infer
    mestream listen            # in another terminal: prints events as they come
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

HELP = "run the live pipeline (capture | track | spot | infer) and publish events over ZeroMQ"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", default=None, metavar="[NAME=]URI",
                        help="cam:N, a video file, an rtsp:// or http:// URL, or a GStreamer pipeline; repeat it for several "
                             "sources, each NAME=URI (default names s0, s1, ...; default: the topology's [[sources]])")
    parser.add_argument("--topology", type=Path, default=None, help="topology TOML (default: the packaged edge/topology.toml)")
    parser.add_argument("--artifact", type=Path, default=None, help="model artifact .onnx (default: the packaged default model)")
    parser.add_argument("--action-units", default=None, metavar="default|off|PATH",
                        help="action units in every event: the packaged AU model (default), off, or another AU artifact "
                             "(overrides [stages.classify] action_units)")
    parser.add_argument("--record", type=Path, default=None, help="also write every published message to this JSONL file")
    parser.add_argument("--fast", action="store_true", help="read files as fast as possible instead of at their frame rate")
    parser.add_argument("--publish", default=None, metavar="ENDPOINT", help="PUB endpoint (default from the topology: tcp://127.0.0.1:5560)")
    parser.add_argument("--allow-public", action="store_true", help="allow --publish to bind an address other hosts can reach")
    parser.add_argument("--curve-key", type=Path, default=None, metavar="FILE", help="server NAME.key_secret from `mestream keys`: encrypt results with CURVE")
    parser.add_argument("--curve-clients", type=Path, default=None, metavar="DIR", help="folder of subscriber NAME.key files allowed to receive (with --curve-key)")
    parser.add_argument("--preview", nargs="?", const="tcp://127.0.0.1:5561", default=None, metavar="ENDPOINT",
                        help="also publish a low-rate preview stream for `mestream preview` (default endpoint tcp://127.0.0.1:5561)")
    parser.add_argument("--preview-source", action="append", default=None, metavar="NAME",
                        help="with several sources, preview only this one (repeatable; default: every source, tiled in `mestream preview`)")
    parser.add_argument("--nats", default=None, metavar="URL", help="also publish to the NATS server on this device, e.g. nats://127.0.0.1:4222 (topology [publish] nats)")
    parser.add_argument("--nats-nkey", default=None, metavar="FILE",
                        help="log in to that NATS server with this user nkey's seed file (deploy/nats/make_nkeys.py; topology [publish] nats_nkey)")
    parser.add_argument("--site", default=None, help="NATS subject's site name (topology [publish] site)")
    parser.add_argument("--device", default=None, help="NATS subject's device name (topology [publish] device; default: the host name)")


def build_run_options(args: argparse.Namespace):
    from dataclasses import replace

    from edge.process import RunOptions
    from edge.stages.action_units import with_action_units
    from edge.topology import load_topology

    topo = with_action_units(load_topology(args.topology), getattr(args, "action_units", None))
    publish = topo.publish
    if args.publish:
        publish = replace(publish, endpoint=args.publish)
    if args.allow_public:
        publish = replace(publish, allow_public=True)
    if getattr(args, "preview", None):
        publish = replace(publish, preview=args.preview)
    if getattr(args, "preview_source", None):
        if not publish.preview:
            from engines.errors import MestreamError

            raise MestreamError(f"--preview-source {args.preview_source[0]}: there is no preview to choose for; add --preview")
        publish = replace(publish, preview_sources=tuple(args.preview_source))
    if args.curve_key or args.curve_clients:
        from engines.errors import MestreamError

        if not (args.curve_key and args.curve_clients):
            raise MestreamError("--curve-key and --curve-clients go together: the server key and the folder of allowed subscriber keys")
        publish = replace(publish, curve_secret_key=str(args.curve_key), curve_clients=str(args.curve_clients))
    nats = {k: v for k in ("nats", "site", "device", "nats_nkey") if (v := getattr(args, k, None)) is not None}
    if nats:
        from edge.topology import check_nats

        publish = replace(publish, **nats)
        if publish.nats:
            check_nats(publish, "command line")
    import time

    from edge.sources import parse_source_args

    sources = parse_source_args(args.source) if args.source else topo.sources
    if not sources:
        from engines.errors import MestreamError

        raise MestreamError("no source: pass --source cam:0 (or a file, a URL; repeat it as NAME=URI for several), or add [[sources]] to the topology")
    run = RunOptions(
        run_id=f"{time.time_ns():x}",
        source=sources[0].uri,
        source_name=sources[0].name,
        sources=tuple((s.name, s.uri) for s in sources) if len(sources) > 1 else (),
        artifact=str(args.artifact) if args.artifact else "",
        fast=bool(args.fast),
        record=str(args.record) if args.record else "",
        publish=publish,
    )
    return topo, run


def run(args: argparse.Namespace) -> int:
    import logging

    from edge.status_view import TerminalStatus, block_lines
    from edge.supervisor import Supervisor, preflight

    topo, options = build_run_options(args)
    options = preflight(topo, options)
    tty = sys.stderr.isatty()
    quiet = getattr(args, "quiet", False)
    view = TerminalStatus(sys.stderr)

    def show(line: str, metrics) -> None:
        if quiet:
            return
        if tty:  # a block at the window's bottom, worst sources first, logs scrolling above (edge/status_view.py)
            width, height = view.size()
            view.show(block_lines(metrics, sup.last_sources, width, height), height)
        else:  # a log: the whole line, one per tick
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    level = logging.getLevelName(logging.getLogger("edge").getEffectiveLevel())  # -v reaches the stage processes
    sup = Supervisor(topo, options, on_tick=show, log_level=level if isinstance(level, str) else "WARNING")

    def on_signal(signum, frame):
        sup.stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}  # HUP: the terminal went away
    try:
        sup.start()
        code = sup.run()
    finally:
        sup.stop()  # idempotent; covers a failed start too: nothing is left running
        for s, h in previous.items():
            signal.signal(s, h)
        view.close()
    if not quiet:
        from edge.nats_out import without_secret

        print(f"mestream run: {'finished' if code == 0 else 'stopped'}; published on {options.publish.endpoint}"
              + (f"; NATS {without_secret(options.publish.nats)}" if options.publish.nats else "")
              + (f"; record {options.record}" if options.record else ""), file=sys.stderr)
    return code
