"""Several sources in one run: a chain per source into one infer, events and statuses naming their source,
per-source metrics, and a failing source restarted alone."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from stand_ins import (
    FAST_RUNTIME,
    artifact_for_tests,
    free_port,
    tiny_video,
    wait_until,
)

from edge.process import RunOptions
from edge.supervisor import plan_processes
from edge.topology import PublishConfig, load_topology, parse_topology


def test_each_source_gets_its_own_chain_and_all_feed_one_infer(tmp_path):
    run = RunOptions(source="a.mp4", sources=(("front", "a.mp4"), ("side", "cam:1")))
    plans = {p.name: p for p in plan_processes(load_topology(), run, tmp_path, "ipc://control", "mestream-1-")}
    assert sorted(plans) == ["capture-front", "capture-side", "infer", "spot-front", "spot-side", "track-front", "track-side"]
    assert plans["spot-front"].output == plans["spot-side"].output == plans["infer"].input
    assert plans["infer"].upstreams == 2 and plans["infer"].source == ""
    assert (plans["capture-side"].run.source, plans["track-side"].source) == ("cam:1", "side")
    assert plans["capture-front"].shm_out != plans["capture-side"].shm_out  # a restart removes its own rings only
    assert plans["track-side"].shm_in == plans["capture-side"].shm_out


def test_one_source_keeps_the_topology_s_process_names():
    plans = plan_processes(load_topology(), RunOptions(source="a.mp4"), __import__("pathlib").Path("/x"), "ipc://c")
    assert [p.name for p in plans] == ["capture", "track", "spot", "infer"]
    assert [p.source for p in plans] == ["s0", "s0", "s0", ""]


def test_a_chain_process_with_its_own_input_cannot_serve_several_sources(tmp_path):
    from engines.errors import MestreamError

    topo = parse_topology({"process": [{"name": "capture", "stages": ["capture"]},
                                       {"name": "track", "stages": ["track"], "input": "tcp://127.0.0.1:5999"},
                                       {"name": "infer", "stages": ["publish"]}]})
    run = RunOptions(source="a.mp4", sources=(("a", "a.mp4"), ("b", "b.mp4")))
    with pytest.raises(MestreamError, match="'track': input = 'tcp://127.0.0.1:5999' cannot serve 2 sources"):
        plan_processes(topo, run, tmp_path, "ipc://c")


@pytest.fixture(scope="module")
def two_source_run(assets, tmp_path_factory):
    """`mestream run --fast` on a real face video (a) and a synthetic one with planted expressions (b)."""
    from edge.cli import main
    from edge.tools.synth import read_truth

    tmp = tmp_path_factory.mktemp("two")
    synth, truth = tmp / "synth.avi", tmp / "synth.csv"
    assert main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(synth), "--truth", str(truth),
                 "--seconds", "8", "--seed", "3", "--no-progress"]) == 0
    record = tmp / "r.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--source", f"a={assets / 'videos' / 'pyfeat_single_face.mp4'}",
         "--source", f"b={synth}", "--fast", "--artifact", str(artifact_for_tests(tmp)), "--record", str(record),
         "--publish", f"tcp://127.0.0.1:{free_port()}"], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    return lines, read_truth(truth), proc.stderr


@pytest.mark.slow
def test_events_of_two_real_sources_name_the_source_they_came_from(two_source_run):
    lines, truth, _ = two_source_run
    events = [x for x in lines if "label" in x]
    by_source = {s: [e for e in events if e["source"] == s] for s in ("a", "b")}
    assert len(events) == len(by_source["a"]) + len(by_source["b"])  # every event names a or b
    assert by_source["a"] and all(e["offset"]["frame"] < 72 for e in by_source["a"])  # a has 72 frames
    planted = [(r.onset, r.offset) for r in truth]
    hits = [e for e in by_source["b"] if any(e["onset"]["frame"] <= off and on <= e["offset"]["frame"] for on, off in planted)]
    assert len(hits) >= len(planted) - 1, (planted, [(e["onset"]["frame"], e["offset"]["frame"]) for e in by_source["b"]])


@pytest.mark.slow
def test_statuses_and_the_final_metrics_are_per_source(two_source_run):
    lines, _, _ = two_source_run
    found = [x for x in lines if x.get("event") == "face_found"]
    assert {x["source"] for x in found} == {"a", "b"}
    final = [x for x in lines if x.get("event") == "metrics" and x.get("final")]
    assert final, "no final metrics"
    sources = final[-1]["sources"]
    assert sources["a"]["frame"] == 71 and sources["b"]["frame"] == 239
    assert sources["a"]["drops"] == sources["b"]["drops"] == 0 and sources["b"]["result_ms"]["p95"] > 0
    assert re.match(r"a \d+ fps frame 71 drops 0.* \| b \d+ fps frame 239 drops 0.* \| infer ", final[-1]["detail"]), final[-1]["detail"]


@pytest.fixture
def two_paced(tmp_path, supervise):
    """capture | publish for two paced 20 s sources a and b, supervised in a thread."""
    topo = parse_topology({"runtime": FAST_RUNTIME, "process": [
        {"name": "capture", "stages": ["capture"]},
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    a, b = tiny_video(tmp_path / "a.avi", 600), tiny_video(tmp_path / "b.avi", 600)
    run = RunOptions(source=str(a), sources=(("a", str(a)), ("b", str(b))), record=str(tmp_path / "r.jsonl"),
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}"))
    sup = supervise(topo, run).sup
    assert wait_until(lambda: all(c.state == "running" for c in sup.children), 30), sup.metrics()
    return sup, tmp_path / "r.jsonl.partial"


def test_a_killed_source_is_restarted_alone_and_the_other_runs_on(two_paced):
    sup, record = two_paced
    by_name = {c.name: c for c in sup.children}
    a, b, infer = by_name["capture-a"], by_name["capture-b"], by_name["infer"]
    pids = {c.name: c.popen.pid for c in sup.children}
    b_frame = b.metrics.get("last_seq", -1)
    os.kill(a.popen.pid, signal.SIGKILL)
    assert wait_until(lambda: a.alive and a.popen.pid != pids["capture-a"] and a.state == "running", 3.0)
    assert (a.restarts, b.restarts, infer.restarts) == (1, 0, 0)
    assert (b.popen.pid, infer.popen.pid) == (pids["capture-b"], pids["infer"])
    assert wait_until(lambda: b.metrics.get("last_seq", -1) > b_frame + 15, 3.0)  # b never stopped
    time.sleep(1.2)  # a status period: the restart and the metrics reach the record
    statuses = [json.loads(x) for x in record.read_text().splitlines()]
    restart = [s for s in statuses if s.get("event") == "restart"]
    assert restart and restart[0]["source"] == "a" and restart[0]["process"] == "capture-a"
    metrics = [s for s in statuses if s.get("event") == "metrics"][-1]
    assert metrics["sources"]["a"]["restarts"] == 1 and metrics["sources"]["b"]["restarts"] == 0


def test_each_message_goes_to_nats_on_its_own_source_s_subject():
    """The publisher puts an event of source "front" on ...front.event; a message without one on s0's."""
    from edge.messages import Message
    from edge.nats_out import NatsTarget
    from edge.stages.publish import Publish

    pub = Publish(f"tcp://127.0.0.1:{free_port()}", nats=NatsTarget("nats://127.0.0.1:1", site="lab", device="d1"))

    class Outbox:  # the outbox's queue as the publisher fills it, without a thread or a server
        def __init__(self):
            self.offered = []

        def offer(self, kind, data, msg_id, source=""):
            self.offered.append((kind, source, msg_id))

        def take_changes(self):
            return []

        def counters(self):
            return {}

    pub._nats_out = Outbox()
    pub.process(Message("status", {"stage": "track", "event": "face_found", "detail": "", "source": "front"}))
    pub.process(Message("status", {"stage": "publish", "event": "nats_connected", "detail": ""}))
    pub.process(Message("status", {"stage": "x", "event": "y", "detail": "", "source": "a.>"}))  # never a subject
    assert [(k, s) for k, s, _ in pub._nats_out.offered] == [("status", "front"), ("status", "s0"), ("status", "s0")]
    assert ".front.status." in pub._nats_out.offered[0][2]


def test_the_nats_outbox_builds_the_subject_from_the_message_s_source():
    from edge.nats_out import NatsOutbox, NatsTarget

    box = NatsOutbox(NatsTarget("nats://127.0.0.1:1", site="lab", device="d1"), run_id="r")  # never started
    box.offer("event", b"{}", "id1", "front")
    box.offer("status", b"{}", "id2")
    assert [i.subject for i in box._queue] == ["mestream.v1.lab.d1.front.event", "mestream.v1.lab.d1.s0.status"]
