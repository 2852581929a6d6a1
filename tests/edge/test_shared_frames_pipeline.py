"""Shared frames in the running pipeline: capture hands the next process references into a /dev/shm ring,
the reader counts an overwritten slot as a drop with a gap, a killed writer or reader recovers, bad
references are counted drops, and no segment outlives the run."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import zmq
from stand_ins import FAST_RUNTIME, free_port, tiny_video, wait_until

from edge import bus, shared_frames
from edge.entrance import Envelope
from edge.messages import Message
from edge.process import ProcessPlan, RunOptions, StageProcess
from edge.topology import PublishConfig, parse_topology

pytestmark = pytest.mark.skipif(not shared_frames.available(), reason="no writable /dev/shm on this host")

def _segments(sup) -> list[Path]:
    return list(shared_frames.SHM_DIR.glob(sup.shm_prefix + "*")) if sup.shm_prefix else []


def _supervise(supervise, tmp_path, *, frames: int, fast: bool, shared: bool = True, middle: tuple = ()):
    """capture | *middle | infer (publish) on a tiny video, supervised in a thread."""
    # a real track stage: its first FaceMesh frames may hold its heartbeat up for seconds on a loaded machine
    topo = parse_topology({"runtime": {**FAST_RUNTIME, "hang_timeout_s": 10.0, "shared_frames": shared}, "process": [
        {"name": "capture", "stages": ["capture"]},
        *({"name": name, "stages": [name]} for name in middle),
        {"name": "infer", "stages": ["publish"], "policy": "block"}]})
    run = RunOptions(source=str(tiny_video(tmp_path / "v.avi", frames)), fast=fast,
                     publish=PublishConfig(endpoint=f"tcp://127.0.0.1:{free_port()}"))
    return supervise(topo, run)


def test_a_fast_file_goes_through_the_ring_whole_and_leaves_no_segment(tmp_path, supervise):
    watched = _supervise(supervise, tmp_path, frames=400, fast=True)
    sup = watched.sup
    try:
        assert sup.children[0].plan.shm_out and sup.children[1].plan.shm_in
        seen = []
        assert wait_until(lambda: seen.extend(_segments(sup)) or all(c.done for c in sup.children), 30), sup.metrics()
        watched.thread.join(5)
        assert watched.code == 0
        reader = sup.metrics()["infer"]
        assert reader["last_seq"] == 399 and not reader["drops"] and not reader["lost"], reader
        assert reader["shm_frames"] == sup.metrics()["capture"]["shm_frames"] == 400
    finally:
        watched.stop()
    assert not list(shared_frames.SHM_DIR.glob(sup.shm_prefix + "*"))


def test_with_shared_frames_off_no_segment_is_made(tmp_path, supervise):
    # paced and stopped while running (the run-to-the-end case of this inline path is the test below)
    watched = _supervise(supervise, tmp_path, frames=300, fast=False, shared=False)
    sup = watched.sup
    try:
        assert not sup.shm_prefix and not sup.children[0].plan.shm_out
        reader = sup.children[1]
        assert wait_until(lambda: reader.metrics.get("last_seq", -1) >= 10, 30), sup.metrics()
        assert reader.metrics["shm_frames"] == 0 and sup.children[0].metrics["shm_frames"] == 0
    finally:
        watched.stop()


def test_a_killed_capture_leaves_no_segment_and_its_successor_is_read(tmp_path, supervise):
    watched = _supervise(supervise, tmp_path, frames=900, fast=False)
    sup = watched.sup
    try:
        capture, reader = sup.children
        assert wait_until(lambda: capture.state == "running" and _segments(sup), 30), sup.metrics()
        old = _segments(sup)
        os.kill(capture.popen.pid, signal.SIGKILL)
        assert wait_until(lambda: capture.restarts == 1 and _segments(sup) and _segments(sup) != old, 5), sup.metrics()
        assert not any(p.exists() for p in old), "the dead capture's segment was left in /dev/shm"
        n = reader.metrics.get("n_in", 0)
        assert wait_until(lambda: reader.metrics.get("n_in", 0) > n + 10, 5), "the reader did not follow the new segment"
        prefix = sup.shm_prefix
    finally:
        watched.stop()
    assert not list(shared_frames.SHM_DIR.glob(prefix + "*"))


def test_a_killed_reader_does_not_leave_a_blocking_capture_waiting_for_its_slots(tmp_path, supervise):
    watched = _supervise(supervise, tmp_path, frames=3000, fast=True)
    sup = watched.sup
    try:
        capture, reader = sup.children
        # Frozen before a fast stream can end, the reader holds slots and the capture blocks on them; only
        # then does it die (a reader killed after the stream ended would prove nothing).
        assert wait_until(lambda: reader.popen is not None and reader.state in ("ready", "running"), 30), sup.metrics()
        frozen = reader.popen.pid
        os.kill(frozen, signal.SIGSTOP)
        assert wait_until(lambda: capture.state == "blocked", 10), sup.metrics()
        os.kill(frozen, signal.SIGKILL)
        # the new reader gets frames again: the capture freed the dead reader's credits
        assert wait_until(lambda: reader.restarts == 1 and reader.metrics.get("pid") == reader.popen.pid
                          and reader.metrics.get("n_in", 0) > 50, 10), sup.metrics()
    finally:
        watched.stop()


def test_a_sigterm_stop_removes_every_segment(tmp_path, supervise):
    watched = _supervise(supervise, tmp_path, frames=900, fast=False)
    sup = watched.sup
    prefix = sup.shm_prefix
    try:
        assert wait_until(lambda: _segments(sup), 30), sup.metrics()
        os.kill(sup.children[0].popen.pid, signal.SIGSTOP)  # a writer that cannot even unlink its own
    finally:
        watched.stop()
    assert not list(shared_frames.SHM_DIR.glob(prefix + "*"))


def test_bad_references_on_the_socket_are_counted_drops_and_the_reader_keeps_running(tmp_path, supervise, zmq_ctx):
    watched = _supervise(supervise, tmp_path, frames=900, fast=False)
    sup = watched.sup
    push = zmq_ctx.socket(zmq.PUSH)
    try:
        reader = sup.children[1]
        assert wait_until(lambda: reader.state == "running" and _segments(sup), 30), sup.metrics()
        segment = _segments(sup)[0].name
        push.connect(reader.plan.input)
        good = {"segment": segment, "slot": 0, "gen": 1, "shape": [48, 64, 3], "dtype": "uint8"}
        bad = [{**good, "slot": 999}, {**good, "segment": "elsewhere-1"}, {**good, "shape": [4800, 6400, 3]},
               {**good, "dtype": "float64"}, "slot 3", {**good, "gen": 2}]
        for i in range(60):
            bus.send(push, Message("frame", {"seq": 10**6 + i, "t_capture_ns": 1, "shm": bad[i % len(bad)]}))
        assert wait_until(lambda: (reader.metrics.get("drops") or {}).get("malformed", 0) >= 60, 5), reader.metrics
        assert reader.restarts == 0 and reader.alive
    finally:
        watched.stop()


class _Overwriter:
    """A stage during whose work the writer reuses the frame's slot (a live source that never waits)."""

    name = "overwriter"

    def __init__(self, ring, overwrite_at):
        self.ring = ring
        self.overwrite_at = overwrite_at
        self.seen = []

    def process(self, msg):
        self.seen.append((msg.header["seq"], msg.header.get("gap", 0)))
        if msg.header["seq"] in self.overwrite_at:
            for _ in range(self.ring.slots):
                self.ring.commit(np.zeros((4, 6, 3), np.uint8))
        return [Message("face", {"seq": msg.header["seq"], "found": False})]


def test_a_frame_overwritten_while_the_stage_used_it_is_a_counted_drop_and_the_next_frame_has_a_gap(tmp_path):
    prefix = f"mestream-test{os.getpid()}-"
    ring = shared_frames.FrameRing.create(prefix, slots=4, slot_bytes=72)
    plan = ProcessPlan(name="track", stages=("track",), stage_options={}, input="", output="", control=f"ipc://{tmp_path}/c",
                       queue=4, hwm=1, policy="drop", output_policy="drop", output_hwm=4, heartbeat_s=0.5,
                       run=RunOptions(source="x"), shm_in=prefix)
    ctx = zmq.Context()
    proc = StageProcess(plan, ctx)
    try:
        stage = _Overwriter(ring, overwrite_at={2})
        proc.stages = [stage]
        emitted = []
        proc.emit = lambda out, env: emitted.extend(out)
        for seq in range(5):
            ref = ring.commit(np.full((4, 6, 3), seq, np.uint8))
            msg = Message("frame", {"seq": seq, "t_capture_ns": 1})
            assert proc.ring_in.resolve(msg, ref) == ""
            proc.handle(msg, Envelope(1, ref=ref))
        assert [m.header["seq"] for m in emitted] == [0, 1, 3, 4]  # what the stage made of seq 2 is not trusted
        assert proc.drops.counts == {"overwritten": 1}
        assert proc.numbering.lost == 0
        assert dict(stage.seen)[3] == 1  # the frame after it carries the gap
    finally:
        proc.ring_in.close()
        proc.control.close(0)
        ctx.term()
        ring.close()


def test_frames_go_by_reference_only_on_the_supervisors_own_link_to_the_next_process(tmp_path):
    from edge.supervisor import plan_processes

    def plans(track_input=""):
        track = {"name": "track", "stages": ["publish"], **({"input": track_input} if track_input else {})}
        topo = parse_topology({"process": [{"name": "capture", "stages": ["capture"]}, track]})
        return plan_processes(topo, RunOptions(source="x"), tmp_path, "ipc://c", "mestream-1-ab-")

    same_host = plans()
    assert same_host[0].shm_out == "mestream-1-ab-" and same_host[0].shm_slots >= 8 and same_host[1].shm_in == "mestream-1-ab-"
    over_tcp = plans(track_input="tcp://127.0.0.1:5599")
    assert not over_tcp[0].shm_out and not over_tcp[1].shm_in


def test_with_shared_frames_off_a_fast_file_still_arrives_whole_with_its_end_of_stream(tmp_path, supervise):
    # capture | track | publish, inline: capture used to exit at once after "eos" and lose the tail still
    # waiting in track's socket (track is slow on its first frames), so the run never ended. Now each
    # writer stays until its reader hangs up (edge/process.py StageProcess.finish).
    for attempt in range(3):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        watched = _supervise(supervise, folder, frames=20, fast=True, shared=False, middle=("track",))
        sup = watched.sup
        try:
            assert wait_until(lambda sup=sup: all(c.done for c in sup.children), 30), (attempt, sup.metrics())
            watched.thread.join(5)
            assert watched.code == 0
            assert sup.metrics()["track"]["last_seq"] == 19
        finally:
            watched.stop()
