"""The real thing: `mestream run` starts its processes over ipc on a real face video; a plain pyzmq
subscriber receives status and events, and every event validates against the JSON Schema."""

import json
import re
import subprocess
import sys
import time

import jsonschema
import pytest
import zmq
from stand_ins import artifact_for_tests, event_schema, free_port, stage_processes_of

VIDEO = "pyfeat_single_face.mp4"  # 72 frames, 30 fps: neutral -> smile -> neutral


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return artifact_for_tests(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="module")
def reference_events(assets, artifact):
    """The events of the same stages chained in ONE process, no sockets: what the processes must reproduce."""
    from edge.process import RunOptions
    from edge.stages.base import run_chain
    from edge.stages.registry import build_stage
    from edge.topology import PublishConfig, load_topology

    topo = load_topology()
    run = RunOptions(source=str(assets / "videos" / VIDEO), artifact=str(artifact), fast=True,
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}"))
    stages = [build_stage(s, topo.stage_options.get(s, {}), run) for s in topo.stage_names()]
    return [m.header for m in run_chain(stages[0], stages[1:]) if m.topic == "me.event"]


@pytest.fixture(scope="module")
def plain_run(assets, artifact, tmp_path_factory):
    """One real `mestream run --fast` with a plain pyzmq subscriber and a --record file."""
    record = tmp_path_factory.mktemp("run") / "events.jsonl"
    proc, got, children = _run_and_listen(assets / "videos" / VIDEO, artifact, record, free_port())
    return proc, got, children, record


def _key(e):
    return (e["kind"], e["onset"]["frame"], e["apex"]["frame"], e["offset"]["frame"], e["label"])


def _run_and_listen(video, artifact, record, port, seconds=120):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RECONNECT_IVL, 20)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.")
    sub.connect(f"tcp://127.0.0.1:{port}")  # before the publisher binds: ZeroMQ keeps retrying
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(video), "--fast", "--artifact", str(artifact),
         "--record", str(record), "--publish", f"tcp://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = []
    children = set()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            children.update(stage_processes_of(proc.pid))
            if sub.poll(100):
                topic, body = sub.recv_multipart()
                got.append((topic.decode(), json.loads(body)))
            elif proc.poll() is not None:
                break
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close(0)
        ctx.term()
    return proc, got, children


@pytest.mark.slow
def test_a_real_face_video_gives_schema_valid_events_to_a_plain_subscriber(plain_run):
    proc, got, children, record = plain_run
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    events = [body for topic, body in got if topic == "me.event"]
    statuses = [body for topic, body in got if topic == "me.status"]
    assert events, f"no event published; statuses: {[s['event'] for s in statuses]}"
    schema = event_schema()
    for event in events:
        jsonschema.validate(event, schema)
        assert 0 <= event["onset"]["frame"] <= event["apex"]["frame"] <= event["offset"]["frame"] <= 71
        assert event["onset"]["t_capture_ns"] <= event["offset"]["t_capture_ns"] <= event["t_published_ns"]
    assert {"face_found", "metrics"} <= {s["event"] for s in statuses}
    assert statuses[-1]["event"] == "metrics" and statuses[-1]["final"] is True  # however short the run
    # The record holds the same events, whole (renamed from .partial at the end).
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r for r in recorded if r["schema"] == "mestream.event"] == events
    assert children and not any(stage_processes_of(proc.pid))
    assert "restart" not in {s["event"] for s in statuses if s["stage"] == "supervisor"}
    for s in statuses:  # --fast blocks instead of dropping: no frame is lost anywhere
        if s["event"] == "metrics":
            assert all(not p["drops"] and not p["lost"] for p in s["processes"].values()), s["detail"]


@pytest.mark.slow
def test_the_processes_give_the_same_events_as_the_stages_chained_in_one_process(plain_run, reference_events):
    proc, got, _, _ = plain_run
    assert proc.returncode == 0
    spread = [body for topic, body in got if topic == "me.event"]
    assert reference_events and [_key(e) for e in reference_events] == [_key(e) for e in spread]
    for a, b in zip(reference_events, spread):
        for name, p in a["probabilities"].items():
            assert abs(p - b["probabilities"][name]) < 1e-5


def _stage_input(pid: int, name: str, timeout: float = 30.0) -> str:
    """The ipc endpoint of stage process `name` under supervisor `pid`, read from its plan on the command line."""
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in stage_processes_of(pid):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            plan = json.loads(argv[argv.index(b"edge.process") + 1])
            # bound, not just planned: a message sent before the stage binds (MediaPipe takes seconds to open
            # on a loaded machine) waits in the sender's queue and is lost when the sender closes
            if plan["name"] == name and Path(plan["input"].removeprefix("ipc://")).exists():
                return plan["input"]
        time.sleep(0.05)
    raise AssertionError(f"no stage process {name} under {pid}")


@pytest.mark.slow
def test_ten_thousand_malformed_messages_change_no_event(assets, artifact, reference_events):
    import threading

    import numpy as np

    video = assets / "videos" / VIDEO
    reference = reference_events

    rng = np.random.default_rng(7)
    bad = [[b"face"], [b"face", b"{oops"], [b"face", b'{"v":2,"arrays":[]}'], [b"face", b'{"v":1,"arrays":[],"seq":-4}'],
           [b"face", b'{"v":1,"arrays":[{"name":"crop","dtype":"uint8","shape":[128,128]}],"seq":3}', b"short"],
           [b"face", b'{"v":1,"arrays":[{"name":"crop","dtype":"object","shape":[1]}],"seq":3}', b"x"],
           [b"interval", b'{"v":1,"arrays":[{"name":"onset","dtype":"uint8","shape":[60000,60000]}]}', b"x"],
           [b"x" * 100, b"{}"], [b"face", b"{}"] + [b""] * 12]
    # well-formed on the wire, wrong for the stage: shapes, dtypes and header types it cannot use
    from edge.bus import encode
    from edge.messages import Message

    def crop(side, dtype=np.uint8):
        return np.zeros((side, side), dtype)

    def point(s):
        return {"seq": s, "t_capture_ns": s}

    bad += [[bytes(part) for part in encode(m)] for m in (
        Message("frame", {"seq": 5}, {"image": np.zeros((48, 64, 3), np.float32)}),
        Message("frame", {"seq": 5}, {"image": np.zeros((2, 2, 7), np.uint8)}),
        Message("frame", {"seq": 5, "gap": "x", "stamps": 3}, {"image": np.zeros((48, 64), np.uint8)}),
        Message("face", {"seq": 5, "found": True}, {"crop": np.zeros((3,), np.float64)}),
        Message("face", {"seq": 5, "found": True}, {"crop": crop(64), "landmarks": np.zeros((5, 3), np.float32)}),
        Message("interval", {"onset": point(1), "apex": point(2), "offset": point(3)}, {"onset": crop(128), "apex": crop(7)}),
        Message("interval", {"onset": "x", "apex": point(2), "offset": point(3)}, {"onset": crop(128), "apex": crop(128)}),
        Message("status", {"stage": 1, "event": ["x"]}),
    )]
    sent = []

    def fuzz(pid):
        ctx = zmq.Context()
        socks = []
        for name in ("track", "spot", "infer"):
            s = ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 100000)
            s.connect(_stage_input(pid, name))
            socks.append(s)
        for i in range(10_000):
            parts = bad[i % len(bad)] if i % 5 else [rng.bytes(int(rng.integers(1, 200))) for _ in range(int(rng.integers(1, 4)))]
            socks[i % 3].send_multipart(parts)
            sent.append(i)
        time.sleep(1.0)
        for s in socks:
            s.close(0)
        ctx.term()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RECONNECT_IVL, 20)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.")
    port = free_port()
    sub.connect(f"tcp://127.0.0.1:{port}")
    # --fast: entrances block instead of dropping, so a loaded machine cannot change the events
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(video), "--fast", "--artifact", str(artifact),
                             "--publish", f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fuzzer = threading.Thread(target=fuzz, args=(proc.pid,), daemon=True)
    fuzzer.start()
    got = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sub.poll(100):
                topic, body = sub.recv_multipart()
                got.append((topic.decode(), json.loads(body)))
            elif proc.poll() is not None:
                break
        proc.wait(10)
        fuzzer.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close(0)
        ctx.term()
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert len(sent) == 10_000
    events = [b for t, b in got if t == "me.event"]
    assert [_key(e) for e in events] == [_key(e) for e in reference]
    metrics = [b["processes"] for t, b in got if t == "me.status" and b["event"] == "metrics"]
    assert all(not p["restarts"] for m in metrics for p in m.values())
    # every stage counted garbage: its rate-limited drop line (logged at the first drop). The published
    # metrics may end before the last drops, since a short --fast run can finish within one status period.
    # Under load the flood can first fill track's entrance queue, so its first (rate-limited) line may say
    # "behind": that line still shows the garbage was counted and dropped, not processed.
    for name in ("track", "spot", "infer"):
        assert re.search(rf"{name}\[\d+\] edge\.bus: {name}: dropped \d+ message\(s\) since last report "
                         r"\((malformed|unknown topic|behind)", stderr), stderr[-3000:]
