"""The real thing: `mestream run` starts its processes over ipc on a real face video; a plain pyzmq
subscriber receives status and events, and every event validates against the JSON Schema."""

import json
import subprocess
import sys
import time

import jsonschema
import pytest
import zmq

from stand_ins import event_schema, free_port, stage_processes_of, artifact_for_tests


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
def test_a_real_face_video_gives_schema_valid_events_to_a_plain_subscriber(assets, tmp_path):
    artifact = artifact_for_tests(tmp_path)
    record = tmp_path / "events.jsonl"
    proc, got, children = _run_and_listen(assets / "videos" / "pyfeat_single_face.mp4", artifact, record, free_port())
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
    # The record holds the same events, whole (renamed from .partial at the end).
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r for r in recorded if r["schema"] == "mestream.event"] == events
    assert children and not any(stage_processes_of(proc.pid))
    assert "restart" not in {s["event"] for s in statuses if s["stage"] == "supervisor"}
    for s in statuses:  # --fast blocks instead of dropping: no frame is lost anywhere
        if s["event"] == "metrics":
            assert all(not p["drops"] and not p["lost"] for p in s["processes"].values()), s["detail"]


@pytest.mark.slow
def test_the_processes_give_the_same_events_as_the_stages_chained_in_one_process(assets, tmp_path):
    from edge.process import RunOptions, build_stage
    from edge.stages.base import run_chain
    from edge.topology import PublishConfig, load_topology

    video = assets / "videos" / "pyfeat_single_face.mp4"
    artifact = artifact_for_tests(tmp_path)
    topo = load_topology()
    run = RunOptions(source=str(video), artifact=str(artifact), fast=True,
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}"))
    stages = [build_stage(s, topo.stage_options.get(s, {}), run) for s in topo.stage_names()]
    chained = [m.header for m in run_chain(stages[0], stages[1:]) if m.topic == "me.event"]
    proc, got, _ = _run_and_listen(video, artifact, tmp_path / "r.jsonl", free_port())
    assert proc.returncode == 0
    spread = [body for topic, body in got if topic == "me.event"]

    def key(e):
        return (e["kind"], e["onset"]["frame"], e["apex"]["frame"], e["offset"]["frame"], e["label"])

    assert chained and [key(e) for e in chained] == [key(e) for e in spread]
    for a, b in zip(chained, spread):
        for name, p in a["probabilities"].items():
            assert abs(p - b["probabilities"][name]) < 1e-5
