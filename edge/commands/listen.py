"""`mestream listen`: subscribe to a running pipeline and print events (and status) as they come.

    mestream listen                                  # everything under "me." on tcp://127.0.0.1:5560
    mestream listen --topics me.event --count 5 --timeout 30
    mestream listen --nats nats://hub:4222 --subject 'mestream.v1.lab.>'   # a fleet, at the centre
    mestream listen --face 1                         # only face 1's events and statuses (track max_faces > 1)
    mestream listen --source front                   # only source front's (several --source NAME=URI)
Each message is printed as one line: the topic (the NATS subject with --nats), a space, the JSON. An event carries
its label and probabilities and, unless the AU model is off, "action_units" (AU -> probability) and
"action_units_active" (edge/schema/event.schema.json). Exits 0 after --count messages, 1 when --timeout seconds
pass with nothing received.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "print the events and status a running pipeline publishes (ZeroMQ SUB)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5560", help="the pipeline's PUB endpoint")
    parser.add_argument("--topics", default="me.", help="topic prefix(es), comma separated (default: me.)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0 = never)")
    parser.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds of silence (0 = wait forever)")
    parser.add_argument("--max-bytes", type=int, default=1 << 20, help="refuse messages larger than this (bytes)")
    parser.add_argument("--curve-key", type=Path, default=None, metavar="FILE", help="this subscriber's NAME.key_secret (CURVE publisher)")
    parser.add_argument("--server-key", type=Path, default=None, metavar="FILE", help="the publisher's server.key (with --curve-key)")
    parser.add_argument("--nats", default=None, metavar="URL", help="subscribe on a NATS server instead (e.g. the hub: nats://HOST:4222); needs the [nats] extra")
    parser.add_argument("--subject", default="mestream.v1.>", help="NATS subject to subscribe to, with --nats (default: mestream.v1.>)")
    parser.add_argument("--face", type=int, default=None, metavar="ID",
                        help="only the events and statuses of this face_id (a source with several faces: [stages.track] max_faces)")
    parser.add_argument("--source", default=None, metavar="NAME",
                        help="only the events and statuses of this source (a run with several: --source NAME=URI)")
    parser.add_argument("--nats-nkey", default=None, metavar="FILE",
                        help="log in to the NATS server with this user nkey's seed file (NAME.nk from deploy/nats/make_nkeys.py) instead of a password")
    parser.add_argument("--nats-ca", type=Path, default=None, metavar="FILE", help="CA certificate that signed the NATS server's (tls:// with a private CA)")


def selected(body: bytes, face: int | None = None, source: str | None = None) -> bool:
    """Whether a published message belongs to face `face` and source `source` (None: any passes)."""
    if face is None and source is None:
        return True
    import json

    try:
        message = json.loads(body)
        return ((face is None or message.get("face_id") == face)
                and (source is None or message.get("source") == source))
    except (ValueError, AttributeError):
        return False


def run(args: argparse.Namespace) -> int:
    import zmq

    from engines.errors import MestreamError

    if args.count < 0 or args.timeout < 0 or args.max_bytes < 1:
        raise MestreamError("--count and --timeout must be >= 0 and --max-bytes >= 1")
    if args.face is not None and args.face < 0:
        raise MestreamError(f"--face {args.face}: expected a face_id >= 0 (0 is the first face found)")
    if args.source is not None:
        from edge.sources import check_name

        check_name(args.source, "--source")
    if args.nats:
        return _listen_nats(args)
    from edge.bus import check_endpoint, open_socket

    if not args.endpoint.startswith(("tcp://", "ipc://")):
        raise MestreamError(f"--endpoint {args.endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    check_endpoint(args.endpoint)
    if bool(args.curve_key) != bool(args.server_key):
        raise MestreamError("--curve-key and --server-key go together: this subscriber's secret key and the publisher's public key")
    topics = tuple(t.strip().encode() for t in args.topics.split(",") if t.strip())
    ctx = zmq.Context()
    try:
        if args.curve_key:
            from edge.security import secure_sub_socket

            sock = secure_sub_socket(ctx, args.endpoint, args.curve_key, args.server_key, topics=topics)
        else:
            # a deep receive queue: a slow terminal must not make the publisher drop events for this subscriber
            sock = open_socket(ctx, zmq.SUB, connect=args.endpoint, hwm=1000, max_in_bytes=args.max_bytes)
            for topic in topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic)
    except zmq.ZMQError as exc:
        ctx.term()
        raise MestreamError(f"--endpoint {args.endpoint!r}: {exc}; expected tcp://HOST:PORT or ipc://PATH") from None
    except MestreamError:
        ctx.term()
        raise
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
            if not selected(body, args.face, args.source):
                continue
            print(f"{topic.decode('ascii', 'replace')} {body.decode('utf-8', 'replace')}", flush=True)
            got += 1
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close(0)
        ctx.term()


def _listen_nats(args: argparse.Namespace) -> int:
    import asyncio

    from edge.nats_out import check_nats_url
    from engines.errors import MestreamError

    check_nats_url(args.nats, "--nats")
    if getattr(args, "nats_nkey", None):
        from edge.nats_out import check_nkey_seed

        check_nkey_seed(args.nats_nkey, "--nats-nkey")
    subject = args.subject.strip()
    if not subject or " " in subject or ".." in subject or subject.startswith(".") or subject.endswith("."):
        raise MestreamError(f"--subject {args.subject!r}: not a NATS subject; expected tokens joined by '.', e.g. 'mestream.v1.>'")
    from engines.optional import require

    nats = require("nats", "nats", package="nats-py")
    try:
        return asyncio.run(_nats_loop(nats, args, subject))
    except KeyboardInterrupt:
        return 130


async def _nats_loop(nats, args: argparse.Namespace, subject: str) -> int:
    import asyncio

    from edge.nats_out import without_secret
    from engines.errors import MestreamError

    tls = None
    if args.nats_ca is not None:
        import ssl

        try:
            tls = ssl.create_default_context(cafile=str(args.nats_ca))
        except (OSError, ssl.SSLError) as exc:
            raise MestreamError(f"--nats-ca {args.nats_ca}: not a readable PEM certificate ({exc}); give the CA file that signed the server's") from None

    import logging

    logging.getLogger("asyncio").setLevel(logging.ERROR)  # its TLS-close notice on every nats-py disconnect is noise
    failures: list[str] = []

    async def quiet(exc: Exception) -> None:
        """Failed connects are said once, below, with the server's reason; reconnects after a drop are silent."""
        failures.append(str(exc) or type(exc).__name__)

    try:
        # two tries at start (0 would mean forever), then reconnects without end once connected
        nc = await nats.connect(args.nats, connect_timeout=5, max_reconnect_attempts=1, reconnect_time_wait=0.5, tls=tls, error_cb=quiet,
                                nkeys_seed=getattr(args, "nats_nkey", None) or None)
        nc.options["max_reconnect_attempts"] = -1  # nats-py reads it at each reconnect
    except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS, auth: each is one line with its reason
        why = failures[-1] if failures else (str(exc) or type(exc).__name__)
        raise MestreamError(f"--nats {without_secret(args.nats)!r}: cannot connect ({why}); "
                            "is the NATS server running there, and are the user and password (or --nats-nkey) right?") from None
    got = 0
    queue: asyncio.Queue = asyncio.Queue()

    async def on_msg(msg) -> None:
        await queue.put(msg)

    try:
        await nc.subscribe(subject, cb=on_msg)
        while not args.count or got < args.count:
            try:
                msg = await asyncio.wait_for(queue.get(), args.timeout or None)
            except TimeoutError:
                print(f"mestream listen: nothing received on {without_secret(args.nats)} {subject} for {args.timeout:g} s", file=sys.stderr)
                return 1
            if len(msg.data) > args.max_bytes or not selected(msg.data, args.face, args.source):
                continue
            print(f"{msg.subject} {msg.data.decode('utf-8', 'replace')}", flush=True)
            got += 1
        return 0
    finally:
        await nc.close()
