"""The supervisor with real processes over ipc: restarts, hangs, backoff, clean stops, bad input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from stand_ins import FAST_RUNTIME, free_port, stage_processes_of, tiny_video, wait_until

from edge import bus
from edge.process import RunOptions
from edge.supervisor import Child, Supervisor, child_env, plan_processes
from edge.topology import PublishConfig, load_topology, parse_topology


@pytest.fixture
def running(tmp_path, supervise, zmq_ctx):
    """capture | publish on a paced 20 s synthetic video, supervised in a thread, with a subscriber."""
    port = free_port()
    topo = parse_topology({"runtime": FAST_RUNTIME, "process": [
        {"name": "capture", "stages": ["capture"]},
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    run = RunOptions(source=str(tiny_video(tmp_path / "v.avi", 600)), publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{port}"),
                     record=str(tmp_path / "r.jsonl"))
    sub = zmq_ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.status")
    sub.connect(f"tcp://127.0.0.1:{port}")
    sup = supervise(topo, run).sup
    assert wait_until(lambda: all(c.state == "running" for c in sup.children), 30), sup.metrics()
    return sup, sub


def _statuses(sub, seconds: float) -> list[dict]:
    import json

    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sub.poll(50):
            out.append(json.loads(sub.recv_multipart()[1]))
    return out


def test_a_killed_stage_is_restarted_within_two_seconds_and_says_so(running):
    sup, sub = running
    victim = sup.children[0]
    old_pid = victim.popen.pid
    frames_before = victim.metrics.get("last_seq", -1)
    t = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    assert wait_until(lambda: victim.alive and victim.popen.pid != old_pid and victim.state == "running", 2.0)
    assert time.monotonic() - t < 2.0
    assert victim.restarts == 1
    statuses = _statuses(sub, 1.5)
    assert any(s["event"] == "restart" and s.get("process") == "capture" for s in statuses)
    # the file resumes after the last frame reported, not from the start
    assert wait_until(lambda: victim.metrics.get("last_seq", -1) > frames_before, 3.0)


def test_a_hung_stage_is_killed_and_restarted(running):
    sup, _ = running
    victim = sup.children[1]
    old_pid = victim.popen.pid
    os.kill(old_pid, signal.SIGSTOP)  # alive but silent: exactly what a hang looks like
    assert wait_until(lambda: victim.alive and victim.popen.pid != old_pid and victim.state in ("ready", "running"), 6.0)
    assert victim.restarts == 1


def test_malformed_messages_are_counted_and_dropped_while_the_stage_keeps_running(running, zmq_ctx):
    sup, _ = running
    victim = sup.children[1]
    push = zmq_ctx.socket(zmq.PUSH)
    push.connect(victim.plan.input)
    rng = np.random.default_rng(1)
    garbage = [[b"frame"], [b"frame", b"{nope"], [b"face", b'{"v":99,"arrays":[]}'],
               [b"frame", b'{"v":1,"arrays":[{"name":"image","dtype":"uint8","shape":[9999,9999,3]}]}', b"x"],
               [b"face", b'{"v":1,"arrays":[],"seq":"x"}']]
    for i in range(3000):
        parts = garbage[i % len(garbage)] if i % 7 else [rng.bytes(int(rng.integers(1, 64)))]
        push.send_multipart(parts)
    assert wait_until(lambda: sum((victim.metrics.get("drops") or {}).values()) >= 2500, 10.0), victim.metrics
    assert victim.restarts == 0 and victim.alive


def test_a_stage_crashing_in_a_loop_is_backed_off():
    topo = parse_topology({"runtime": FAST_RUNTIME, "process": [
        {"name": "capture", "stages": ["capture"]}, {"name": "out", "stages": ["publish"]}]})
    run = RunOptions(source="cam:0")
    sup = Supervisor(topo, run)
    sup.children = [Child(p) for p in plan_processes(topo, run, Path("/nonexistent"), "ipc:///nonexistent/control")]
    child = sup.children[0]
    delays = []
    now = 100.0
    for _ in range(6):
        child.started = now  # crashed at once after each start
        sup._restart(child, now, "exited with code 1")
        delays.append(round(child.next_start - now, 3))
    assert delays == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    child.started = now - 60  # ran a minute: healthy again
    sup._restart(child, now, "exited with code 1")
    assert child.next_start - now == pytest.approx(0.2)


CSI_PIPELINE = ("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1 "
                "! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1")


@pytest.mark.parametrize("source, resumes_at", [
    ("clip.mp4", 42),  # a file continues after the last frame it reported
    (CSI_PIPELINE, 0),  # a GStreamer pipeline is live: numbering starts afresh, and the next hop marks the gap
    ("cam:0", 0),
    ("rtsp://10.0.0.2/stream", 0),
])
def test_a_restarted_source_resumes_its_numbering_only_when_it_is_a_file(source, resumes_at):
    topo = parse_topology({"runtime": FAST_RUNTIME, "process": [
        {"name": "capture", "stages": ["capture"]}, {"name": "out", "stages": ["publish"]}]})
    run = RunOptions(source=source)
    sup = Supervisor(topo, run)
    sup.children = [Child(p) for p in plan_processes(topo, run, Path("/nonexistent"), "ipc:///nonexistent/control")]
    source_child = sup.children[0]
    source_child.metrics = {"last_seq": 41}
    sup._restart(source_child, 100.0, "exited with code 1")
    assert source_child.plan.resume_seq == resumes_at


def test_a_real_stage_that_dies_at_every_start_is_restarted_ever_more_slowly_then_runs_again(running):
    sup, sub = running
    victim = sup.children[1]  # the publisher
    gaps = []
    for _ in range(4):  # dies as soon as it starts, four times in a row (well within stable_after_s)
        pid = victim.popen.pid
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        assert wait_until(lambda pid=pid: victim.alive and victim.popen.pid != pid, 5.0)
        gaps.append(time.monotonic() - t_kill)
    expected = [0.2, 0.4, 0.8, 1.6]  # FAST_RUNTIME: 0.2 s, doubling per crash in a row, capped at 2 s
    assert all(g >= e - 0.05 for g, e in zip(gaps, expected)), gaps
    assert gaps[3] > gaps[0] + 1.0, gaps  # backed off, not a tight loop
    assert victim.restarts == 4
    # left alone, it comes back for good and the pipeline resumes: its own restart notices reach subscribers
    assert wait_until(lambda: victim.state == "running", 10.0), victim.state
    statuses = _statuses(sub, 2.0)
    assert any(s["event"] == "metrics" for s in statuses)
    assert victim.restarts == 4 and sup.children[0].restarts == 0


def _mestream(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_sigterm_stops_everything_within_three_seconds_and_keeps_the_record(tmp_path):
    video = tiny_video(tmp_path / "v.avi", 900)
    topo = tmp_path / "t.toml"
    topo.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n[[process]]\nname = "out"\nstages = ["publish"]\n')
    record = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(video), "--topology", str(topo),
                             "--record", str(record), "--publish", f"tcp://127.0.0.1:{free_port()}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(stage_processes_of(proc.pid)) == 2 and (tmp_path / "r.jsonl.partial").exists(), 30)
        time.sleep(1.5)  # a metrics status or two on the record
        children = stage_processes_of(proc.pid)
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
        assert time.monotonic() - t < 3.0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert record.exists() and not (tmp_path / "r.jsonl.partial").exists()
    assert "Traceback" not in proc.stderr.read()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--source", "/nonexistent/clip.mp4"], "no such file"),
        (["--source", "cam:93"], "no camera at index 93"),
        (["--topology", "BADTOPO"], "unknown stage 'tarck'"),
        (["--artifact", "NOTANARTIFACT"], "not a loadable ONNX model"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_is_left_running(tmp_path, args, words):
    video = tiny_video(tmp_path / "v.avi", 10)
    bad_topo = tmp_path / "bad.toml"
    bad_topo.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n[[process]]\nname = "t"\nstages = ["tarck"]\n')
    not_artifact = tmp_path / "model.onnx"
    not_artifact.write_text("this is not an onnx file")
    args = [{"BADTOPO": str(bad_topo), "NOTANARTIFACT": str(not_artifact)}.get(a, a) for a in args]
    if "--source" not in args:
        args = ["--source", str(video), *args]
    result = _mestream("run", *args, "--publish", f"tcp://127.0.0.1:{free_port()}")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and lines[0].startswith("mestream run: error:"), result.stderr


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    video = tiny_video(tmp_path / "v.avi", 10)
    ctx = zmq.Context()
    holder = bus.open_socket(ctx, zmq.PUB, bind="tcp://127.0.0.1:0")
    endpoint = holder.getsockopt(zmq.LAST_ENDPOINT).decode()
    try:
        result = _mestream("run", "--source", str(video), "--publish", endpoint)
    finally:
        holder.close(0)
        ctx.term()
    assert result.returncode != 0 and "already in use" in result.stderr and "Traceback" not in result.stderr


def test_a_public_publish_address_needs_allow_public(tmp_path):
    video = tiny_video(tmp_path / "v.avi", 10)
    result = _mestream("run", "--source", str(video), "--publish", "tcp://0.0.0.0:5999")
    assert result.returncode != 0 and "--allow-public" in result.stderr


def test_per_frame_processes_run_their_libraries_on_one_thread_unless_the_user_says_otherwise():
    topo = load_topology()  # the default: capture | track | spot | infer
    plans = {p.name: p for p in plan_processes(topo, RunOptions(source="x.mp4"), Path("/nonexistent"), "ipc:///nonexistent/control")}
    env = child_env(plans["spot"], {"PATH": "/bin"}, "WARNING")
    assert env["OPENCV_FOR_THREADS_NUM"] == env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["MESTREAM_LOG_LEVEL"] == "WARNING" and env["PATH"] == "/bin"
    assert "OPENCV_FOR_THREADS_NUM" not in child_env(plans["infer"], {}, "WARNING")  # rare events: parallel flow is latency
    assert child_env(plans["track"], {"OMP_NUM_THREADS": "4"}, "WARNING")["OMP_NUM_THREADS"] == "4"


def test_under_fast_the_per_frame_processes_yield_to_infer_and_a_live_source_changes_nothing():
    topo = load_topology()  # the default: capture | track | spot | infer, fast_nice = 10

    def niceness(fast):
        plans = plan_processes(topo, RunOptions(source="x.mp4", fast=fast), Path("/nonexistent"), "ipc:///nonexistent/control")
        return {p.name: p.nice for p in plans}

    assert niceness(True) == {"capture": 10, "track": 10, "spot": 10, "infer": 0}
    assert niceness(False) == {"capture": 0, "track": 0, "spot": 0, "infer": 0}


def test_a_process_runs_at_the_niceness_its_topology_gives_it(tmp_path, supervise):
    topo = parse_topology({"runtime": FAST_RUNTIME, "process": [
        {"name": "capture", "stages": ["capture"], "nice": 7},
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    run = RunOptions(source=str(tiny_video(tmp_path / "v.avi", 600)), publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}"))
    sup = supervise(topo, run).sup
    assert wait_until(lambda: all(c.state == "running" for c in sup.children), 30), sup.metrics()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    niceness = {c.plan.name: os.getpriority(os.PRIO_PROCESS, c.popen.pid) - mine for c in sup.children}
    assert niceness == {"capture": 7, "infer": 0}
    if Path("/proc/self/autogroup").exists():  # each process leads its own scheduler group: its nice is the group's
        groups = {c.plan.name: _autogroup_nice(c.popen.pid) for c in sup.children}
        assert groups == {"capture": 7, "infer": 0}


def test_only_the_last_process_waits_for_the_final_metrics():
    plans = plan_processes(load_topology(), RunOptions(source="x.mp4"), Path("/nonexistent"), "ipc:///nonexistent/control")
    assert {p.name: p.final_status for p in plans} == {"capture": False, "track": False, "spot": False, "infer": True}


def test_a_run_shorter_than_one_status_period_still_ends_with_final_metrics_for_its_subscribers(tmp_path, supervise, zmq_ctx):
    # A status period longer than the run: only the tick at start (before any subscriber hears the
    # publisher) and the final one can be published; the final one must arrive, last, with the whole count.
    port = free_port()
    topo = parse_topology({"runtime": {**FAST_RUNTIME, "status_every_s": 600.0}, "process": [
        {"name": "capture", "stages": ["capture"]},
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    run = RunOptions(source=str(tiny_video(tmp_path / "v.avi", 12)), fast=True,
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{port}"))
    sub = zmq_ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RECONNECT_IVL, 20)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.status")
    sub.connect(f"tcp://127.0.0.1:{port}")
    watched = supervise(topo, run)
    watched.thread.join(60)
    got = _statuses(sub, 0.5)
    assert watched.code == 0
    metrics = [s for s in got if s["event"] == "metrics"]
    assert metrics and metrics[-1]["final"] is True, [(s["event"], s.get("final")) for s in got]
    assert got[-1] is metrics[-1]
    assert metrics[-1]["processes"]["capture"]["state"] == "finishing"  # it has sent everything and waits for the hang-up
    assert metrics[-1]["processes"]["capture"]["n_in"] == 12
    assert sum(bool(s.get("final")) for s in got) == 1


def _autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().rsplit("nice", 1)[1])


def test_track_sends_colour_crops_only_when_the_artifact_or_the_preview_reads_them(tmp_path):
    # A flow-only artifact never looks at colour: the 48 KB colour crop per frame would be sent and kept for nothing.
    from edge.stages.registry import build_stage
    from edge.supervisor import preflight

    topo = load_topology()
    video = str(tiny_video(tmp_path / "v.avi", 5))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    plain = preflight(topo, RunOptions(source=video, publish=PublishConfig(endpoint=endpoint)))
    shown = preflight(topo, RunOptions(source=video, publish=PublishConfig(endpoint=endpoint, preview=f"ipc://{tmp_path}/preview")))
    assert (plain.color_crops, shown.color_crops) == (False, True)
    assert build_stage("track", {}, plain).params.color_crop is False
    assert build_stage("track", {}, shown).params.color_crop is True
    assert build_stage("track", {"color_crop": True}, plain).params.color_crop is True  # the topology's word wins
    assert _through_a_plan(plain).color_crops is False  # and it reaches the stage processes


def _through_a_plan(run):
    from edge.process import ProcessPlan

    plan = plan_processes(load_topology(), run, Path("/nonexistent"), "ipc:///nonexistent/control")[1]
    return ProcessPlan.from_json(plan.to_json()).run
