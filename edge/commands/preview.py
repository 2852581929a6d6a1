"""`mestream preview`: a local web page showing what a running pipeline sees, live.

    mestream run --source cam:0 --preview        # the pipeline publishes its preview stream (off by default)
    mestream preview                              # then open http://127.0.0.1:8765/

The page shows the current frame with the face box and landmarks, the aligned crop, the spotter's motion
signal scrolling with its threshold, and the events with label and confidence. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse

HELP = "live view of a running pipeline (frame, landmarks, crop, motion signal, events) on a local web page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edge.preview import DEFAULT_PREVIEW_ENDPOINT

    parser.add_argument("--endpoint", default=DEFAULT_PREVIEW_ENDPOINT,
                        help=f"the run's preview stream (mestream run --preview [ENDPOINT]; default {DEFAULT_PREVIEW_ENDPOINT})")
    parser.add_argument("--port", type=int, default=8765, help="serve the page on http://127.0.0.1:PORT/ (default 8765)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    import logging
    import threading

    from edge.preview.relay import check_preview_endpoint
    from edge.preview.server import PreviewServer
    from engines.errors import MestreamError

    if args.duration < 0:
        raise MestreamError(f"--duration {args.duration}: expected seconds >= 0 (0 = until Ctrl-C)")
    if not args.endpoint.startswith("ipc://"):
        check_preview_endpoint(args.endpoint)  # a viewer only connects, but a remote one would be a mistake
    with PreviewServer(args.endpoint, port=args.port) as server:
        if not getattr(args, "quiet", False):
            print(f"mestream preview: open {server.url} (subscribed to {args.endpoint}); Ctrl-C to stop", flush=True)
        logging.getLogger(__name__).debug("serving %s", server.url)
        threading.Event().wait(args.duration if args.duration > 0 else None)
    return 0
