"""`mestream preview`: a local web page showing what a running pipeline sees, live.

    mestream run --source cam:0 --preview        # the pipeline publishes its preview stream (off by default)
    mestream preview                              # then open http://127.0.0.1:8765/

The page shows the current frame with the face box and landmarks, the aligned crop, the spotter's motion
signal scrolling with its threshold, and the events with label and confidence. It binds 127.0.0.1 only.
With several sources it also shows every source's frame tiled in one grid; a click on a tile (or
`?source=NAME` in the address) shows that source. `--source NAME` shows that one source only:

    mestream run --source front=cam:0 --source side=cam:1 --preview
    mestream preview --source side
"""

from __future__ import annotations

import argparse

HELP = "live view of a running pipeline (frame, landmarks, crop, motion signal, events) on a local web page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edge.preview import DEFAULT_PREVIEW_ENDPOINT

    parser.add_argument("--endpoint", default=DEFAULT_PREVIEW_ENDPOINT,
                        help=f"the run's preview stream (mestream run --preview [ENDPOINT]; default {DEFAULT_PREVIEW_ENDPOINT})")
    parser.add_argument("--port", type=int, default=8765, help="serve the page on http://127.0.0.1:PORT/ (default 8765)")
    parser.add_argument("--source", default="", metavar="NAME",
                        help="with several sources, show only this one (default: every source, tiled, one picked by a click)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    import logging

    from edge.preview.relay import check_preview_endpoint
    from edge.preview.server import PreviewServer
    from engines.errors import MestreamError

    if args.duration < 0:
        raise MestreamError(f"--duration {args.duration}: expected seconds >= 0 (0 = until Ctrl-C)")
    if not args.endpoint.startswith("ipc://"):
        check_preview_endpoint(args.endpoint)  # a viewer only connects, but a remote one would be a mistake
    if args.source:
        from edge.sources import check_name

        check_name(args.source, f"--source {args.source}")
    with PreviewServer(args.endpoint, port=args.port, source=args.source) as server:
        if not getattr(args, "quiet", False):
            print(f"mestream preview: open {server.url} (subscribed to {args.endpoint}); Ctrl-C to stop", flush=True)
        logging.getLogger(__name__).debug("serving %s", server.url)
        wait_for_source(server, args.source, args.duration)
    return 0


def wait_for_source(server, source: str, duration: float) -> None:
    """Serve for `duration` seconds (0: until Ctrl-C). A --source the run turns out not to have is said once,
    in one line naming the ones it has, after its sources have shown frames for a while; the page waits on."""
    import sys
    import time

    from edge.preview.server import unknown_source

    t_end = time.monotonic() + duration if duration > 0 else float("inf")
    settled_since = None  # when every source seen so far first had a frame, none of them `source`
    said = not source
    while (now := time.monotonic()) < t_end:
        time.sleep(min(0.25, max(0.0, t_end - now)))
        if said:
            continue
        names = server.state.names()
        if source in names:
            said = True  # it is there: nothing to say
        elif names and len(server.state.latest_frames()) == len(names):
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= 1.0:
                print(f"mestream preview: {unknown_source(source, names)}; the page waits for it", file=sys.stderr, flush=True)
                said = True
