"""`mestream listen`: subscribe to a running pipeline and print events (and status) as they come.

    mestream listen                                  # everything under "me." on tcp://127.0.0.1:5560
    mestream listen --topics me.event --count 5 --timeout 30
Each message is printed as one line: the topic, a space, the JSON. Exits 0 after --count messages, 1 when
--timeout seconds pass with nothing received.
"""

from __future__ import annotations

import argparse
import sys

HELP = "print the events and status a running pipeline publishes (ZeroMQ SUB)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5560", help="the pipeline's PUB endpoint")
    parser.add_argument("--topics", default="me.", help="topic prefix(es), comma separated (default: me.)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0 = never)")
    parser.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds of silence (0 = wait forever)")
    parser.add_argument("--max-bytes", type=int, default=1 << 20, help="refuse messages larger than this (bytes)")


def run(args: argparse.Namespace) -> int:
    import zmq

    from engines.errors import MestreamError

    if args.count < 0 or args.timeout < 0 or args.max_bytes < 1:
        raise MestreamError("--count and --timeout must be >= 0 and --max-bytes >= 1")
    if not args.endpoint.startswith(("tcp://", "ipc://")):
        raise MestreamError(f"--endpoint {args.endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, args.max_bytes)
    for topic in filter(None, (t.strip() for t in args.topics.split(","))):
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    try:
        sock.connect(args.endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        ctx.term()
        raise MestreamError(f"--endpoint {args.endpoint!r}: {exc}; expected tcp://HOST:PORT or ipc://PATH") from None
    got = 0
    try:
        while not args.count or got < args.count:
            if not sock.poll(int(args.timeout * 1000) if args.timeout else None):
                print(f"mestream listen: nothing received on {args.endpoint} for {args.timeout:g} s", file=sys.stderr)
                return 1
            parts = sock.recv_multipart()
            if len(parts) != 2:
                continue  # not a mestream message
            topic, body = parts
            print(f"{topic.decode('ascii', 'replace')} {body.decode('utf-8', 'replace')}", flush=True)
            got += 1
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close(0)
        ctx.term()
