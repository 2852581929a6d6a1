"""The process runtime: the entrance, its envelope and numbering, the outlet, heartbeats, one stage process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from edge import bus
from edge.entrance import Entrance, Envelope, Numbering
from edge.messages import Message
from edge.meter import Heartbeat, Meter
from edge.outlet import Outlet
from edge.process import EXIT_USER_ERROR, ProcessPlan, RunOptions, StageProcess


@pytest.fixture
def entrance(tmp_path, zmq_ctx):
    """entrance(policy, queue) -> (Entrance on an ipc PULL socket, a PUSH socket connected to it)."""
    def make(policy: str, queue: int = 4):
        limits = bus.WireLimits()
        sock = bus.open_socket(zmq_ctx, zmq.PULL, bind=f"ipc://{tmp_path}/spot.in", hwm=1000, limits=limits)
        push = bus.open_socket(zmq_ctx, zmq.PUSH, connect=f"ipc://{tmp_path}/spot.in", hwm=1000)
        return Entrance(sock, capacity=queue, policy=policy, limits=limits, drops=bus.DropLog("spot"), poll_ms=200), push
    return make


def _face(seq, **header):
    return Message("face", {"seq": seq, "found": False, **header})


def _numbered(entrance, numbering, n):
    """The next n messages through the entrance and the numbering, as (message, envelope)."""
    out = []
    for _ in range(n):
        msg, env = entrance.next()
        numbering.check(msg, env)
        out.append((msg, env))
    return out


def test_a_stage_that_falls_behind_drops_a_whole_run_and_marks_the_gap(entrance):
    door, push = entrance("drop")
    numbering = Numbering()
    for seq in range(20):
        bus.send(push, _face(seq))
    time.sleep(0.3)
    door.receive()
    assert [m.header["seq"] for m, _ in door.queue] == [0, 1, 2, 3]
    assert door.drops.counts == {"behind": 16}
    bus.send(push, _face(20))  # still dropping: the queue has not emptied yet
    time.sleep(0.1)
    door.receive()
    seen = [m.header["seq"] for m, _ in _numbered(door, numbering, 4)]
    bus.send(push, _face(21))
    time.sleep(0.1)
    [(msg, env)] = _numbered(door, numbering, 1)
    assert seen == [0, 1, 2, 3] and msg.header["seq"] == 21
    assert msg.header["gap"] == env.gap == 17 and door.drops.counts == {"behind": 17}
    assert numbering.lost == 0  # every missing frame is accounted for by this entrance's own drops


def test_a_blocking_entrance_reads_no_more_than_its_queue(entrance):
    door, push = entrance("block")
    for seq in range(10):
        bus.send(push, _face(seq))
    time.sleep(0.3)
    door.receive()
    assert len(door.queue) == 4 and not door.drops.counts
    door.queue.clear()
    door.receive()
    assert [m.header["seq"] for m, _ in door.queue] == [4, 5, 6, 7]


def test_holes_in_the_sequence_are_counted_and_marked(entrance):
    door, push = entrance("drop", queue=100)
    numbering = Numbering()
    for seq in (0, 1, 5, 6, 2):
        bus.send(push, _face(seq))
    time.sleep(0.2)
    gaps = [msg.header.get("gap", 0) for msg, _ in _numbered(door, numbering, 5)]
    assert gaps == [0, 0, 3, 0, 1]  # 3 frames lost upstream; going back means a new stream
    assert numbering.lost == 4


def test_frames_the_sender_dropped_are_counted_as_drops_not_losses_and_the_stage_never_sees_the_count(entrance):
    door, push = entrance("drop", queue=100)
    numbering = Numbering()
    bus.send(push, _face(0))
    bus.send(push, _face(4, sender_dropped=3))
    time.sleep(0.2)
    msg, env = _numbered(door, numbering, 2)[-1]
    assert msg.header["gap"] == 3 and numbering.lost == 0
    assert "sender_dropped" not in msg.header and env.dropped == 3


def test_a_message_dropped_at_the_entrance_passes_on_the_drops_of_its_sender(entrance):
    door, push = entrance("drop", queue=1)
    numbering = Numbering()
    bus.send(push, _face(0))
    bus.send(push, _face(4, sender_dropped=3))  # dropped here: queue full
    time.sleep(0.2)
    door.receive()
    _numbered(door, numbering, 1)
    bus.send(push, _face(5))
    time.sleep(0.2)
    [(msg, _)] = _numbered(door, numbering, 1)
    # seq 1..3 dropped by the sender, 4 by this entrance: a hole of 4, all of it drops, none lost
    assert msg.header["seq"] == 5 and msg.header["gap"] == 4 and numbering.lost == 0
    assert door.drops.counts == {"behind": 1}


def test_a_hole_an_earlier_hop_already_marked_is_not_counted_again(entrance):
    door, push = entrance("drop", queue=100)
    numbering = Numbering()
    bus.send(push, _face(0))
    bus.send(push, _face(6, gap=5))  # track copied the gap it was given
    time.sleep(0.2)
    msg, _ = _numbered(door, numbering, 2)[-1]
    assert msg.header["gap"] == 5 and numbering.lost == 0


def test_a_peer_cannot_explain_a_hole_with_a_header_key_of_the_host(entrance):
    # The host's own drop counts live in the envelope; a header key that looks like one explains nothing.
    door, push = entrance("drop", queue=100)
    numbering = Numbering()
    bus.send(push, _face(0))
    bus.send(push, _face(6, _dropped_here=5))
    time.sleep(0.2)
    msg, env = _numbered(door, numbering, 2)[-1]
    assert msg.header["gap"] == 5 and numbering.lost == 5 and env.dropped == 0


def test_a_sender_drop_count_that_is_not_a_count_is_a_malformed_message(entrance):
    door, push = entrance("drop", queue=100)
    bus.send(push, _face(0, sender_dropped="lots"))
    bus.send(push, _face(1, sender_dropped=-2))
    time.sleep(0.2)
    door.receive()
    assert not door.queue and door.drops.counts == {"malformed": 2}


def test_a_frame_by_reference_to_a_ring_this_process_does_not_read_is_refused(entrance):
    door, push = entrance("drop")
    ref = {"segment": "mestream-x", "slot": 0, "gen": 1, "shape": [48, 64, 3], "dtype": "uint8"}
    bus.send(push, Message("frame", {"seq": 0, "shm": ref}))
    time.sleep(0.2)
    door.receive()
    assert not door.queue and door.drops.counts == {"malformed": 1}


def test_frames_the_outlet_could_not_send_arrive_as_drops_of_the_sender_not_losses(tmp_path, zmq_ctx):
    # Towards a "drop" entrance that is not reading, the outlet drops instead of waiting; the first frame
    # it gets through tells the next entrance how many it dropped.
    limits = bus.WireLimits()
    pull = bus.open_socket(zmq_ctx, zmq.PULL, bind=f"ipc://{tmp_path}/next.in", hwm=1, limits=limits)
    push = bus.open_socket(zmq_ctx, zmq.PUSH, connect=f"ipc://{tmp_path}/next.in", hwm=1)
    drops = bus.DropLog("track")
    outlet = Outlet(push, policy="drop", drops=drops, wait=lambda state: True)
    time.sleep(0.2)  # connected: a PUSH socket without a peer refuses everything
    for seq in range(50):
        outlet.send(_face(seq))
    door = Entrance(pull, capacity=100, policy="drop", limits=limits, drops=bus.DropLog("spot"), poll_ms=200)
    numbering = Numbering()
    seen = []
    while (item := door.next()) is not None:
        numbering.check(*item)
        seen.append(item[0].header["seq"])
    assert drops.counts["downstream full"] > 0 and len(seen) < 50
    outlet.send(_face(50))
    while (item := door.next()) is not None:
        numbering.check(*item)
        seen.append(item[0].header["seq"])
    assert seen[-1] == 50 and numbering.lost == 0, (seen, numbering.lost)
    assert len(seen) + drops.counts["downstream full"] == 51


def test_a_heartbeat_carries_the_state_and_the_counters_and_comes_at_most_once_a_period(tmp_path, zmq_ctx):
    control = bus.open_socket(zmq_ctx, zmq.PULL, bind=f"ipc://{tmp_path}/control", hwm=100)
    meter = Meter()
    meter.arrived(time.monotonic_ns())
    beat = Heartbeat(bus.open_socket(zmq_ctx, zmq.PUSH, connect=f"ipc://{tmp_path}/control", hwm=100), "spot", 60.0,
                     lambda: {"lost": 2, **meter.snapshot()})
    beat("ready", force=True)
    beat("running")  # within the period: not sent
    beat("done", force=True, extra="x")
    got = []
    while control.poll(300):
        got.append(bus.decode(control.recv_multipart()).header)
    assert [h["state"] for h in got] == ["ready", "done"]
    assert got[0]["process"] == "spot" and got[0]["pid"] == os.getpid() and got[0]["n_in"] == 1 and got[0]["lost"] == 2
    assert got[1]["extra"] == "x" and got[1]["rss_mb"] > 0


class _Recorder:
    name = "recorder"

    def __init__(self):
        self.headers = []

    def open(self):
        pass

    def process(self, msg):
        self.headers.append(dict(msg.header))
        return [Message("face", {"seq": msg.header["seq"], "found": False})]

    def close(self):
        pass


def _plan(tmp_path, **fields):
    return ProcessPlan(**{"name": "spot", "stages": ("spot",), "stage_options": {}, "input": "", "output": "",
                          "control": f"ipc://{tmp_path}/control", "queue": 4, "hwm": 4, "policy": "drop",
                          "output_policy": "block", "output_hwm": 4, "heartbeat_s": 0.2, "run": RunOptions(source="x.mp4"),
                          **fields})


def test_a_stage_sees_its_topic_fields_and_the_next_process_gets_the_stamps_of_every_hop(tmp_path, zmq_ctx):
    next_in = bus.open_socket(zmq_ctx, zmq.PULL, bind=f"ipc://{tmp_path}/next.in", hwm=100)
    proc = StageProcess(_plan(tmp_path, output=f"ipc://{tmp_path}/next.in"), zmq_ctx)
    stage = _Recorder()
    proc.stages = [stage]
    proc.outlet = Outlet(bus.open_socket(zmq_ctx, zmq.PUSH, connect=f"ipc://{tmp_path}/next.in", hwm=100), policy="block",
                         drops=proc.drops, wait=proc.keep_waiting)
    proc.handle(_face(0, stamps=[["track", 10, 20]]), Envelope(30, [["track", 10, 20]], dropped=0))
    proc.handle(_face(3, stamps=[["track", 40, 50]]), Envelope(60, [["track", 40, 50]], dropped=2))
    assert [sorted(h) for h in stage.headers] == [["found", "seq", "stamps"], ["found", "gap", "seq", "stamps"]]
    assert stage.headers[1]["gap"] == 2 and proc.numbering.lost == 0  # the two missing frames were dropped
    assert next_in.poll(1000)
    sent = bus.decode(next_in.recv_multipart()).header
    assert sent["stamps"][0] == ["track", 10, 20] and sent["stamps"][1][:2] == ["spot", 30]


def test_a_user_mistake_while_opening_exits_with_the_user_error_status_and_says_why_once(tmp_path, zmq_ctx):
    # started as the supervisor starts it: a missing file is the user's mistake, not a crash to restart
    control = bus.open_socket(zmq_ctx, zmq.PULL, bind=f"ipc://{tmp_path}/control", hwm=100)
    plan = _plan(tmp_path, stages=("capture",), name="capture", run=RunOptions(source=str(tmp_path / "missing.mp4")))
    done = subprocess.run([sys.executable, "-m", "edge.process", plan.to_json(), str(os.getpid())], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "MESTREAM_LOG_LEVEL": "ERROR"})
    assert done.returncode == EXIT_USER_ERROR, done.stderr
    states = []
    while control.poll(500):
        states.append(bus.decode(control.recv_multipart()).header)
    assert [h["state"] for h in states] == ["starting", "fatal"]
    assert "missing.mp4" in states[-1]["error"]


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="this kernel has no scheduler autogroups")
def test_a_process_that_shares_its_session_leaves_the_session_group_alone():
    # It would nice the user's shell and everything started from it. The group is compared as the
    # kernel prints it: a session under a container's init has no group of its own and prints nothing.
    code = ("import os; from edge.process import add_niceness; add_niceness(3); "
            "print(os.getpriority(os.PRIO_PROCESS, 0)); print(open('/proc/self/autogroup').read().strip())")
    group = Path(f"/proc/{os.getpid()}/autogroup")
    before = group.read_text().strip()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert int(out[0]) == os.getpriority(os.PRIO_PROCESS, 0) + 3
    assert out[1] == before == group.read_text().strip()


def test_a_process_in_the_root_group_has_no_autogroup_to_set_and_runs_on(tmp_path, monkeypatch):
    # The kernel prints nothing for a task whose session never got a group (under a container's init).
    import edge.process as process

    empty = tmp_path / "autogroup"
    empty.write_text("")
    monkeypatch.setattr(process, "AUTOGROUP", empty)
    monkeypatch.setattr(process.os, "nice", lambda n: 0)
    monkeypatch.setattr(process.os, "getsid", lambda pid: os.getpid())
    process.add_niceness(3)
    assert empty.read_text() == ""


def test_an_autogroup_file_in_an_unknown_format_is_an_oserror_that_names_it(tmp_path, monkeypatch):
    # main() logs an OSError as a warning and runs on; anything else would crash-loop the stage
    import edge.process as process

    odd = tmp_path / "autogroup"
    odd.write_text("no such format\n")
    monkeypatch.setattr(process, "AUTOGROUP", odd)
    monkeypatch.setattr(process.os, "nice", lambda n: 0)  # the test process keeps its own niceness
    monkeypatch.setattr(process.os, "getsid", lambda pid: os.getpid())
    with pytest.raises(OSError, match="reads 'no such format'"):
        process.add_niceness(3)
    assert odd.read_text() == "no such format\n"


def test_the_faces_of_one_frame_are_numbered_once_and_a_repeated_face_is_a_restart():
    numbering = Numbering()

    def face(seq, face_id=None):
        header = {"seq": seq, "found": True, **({} if face_id is None else {"face_id": face_id})}
        msg = Message("face", header)
        return numbering.check(msg, Envelope(0)), msg.header.get("gap", 0)

    assert [face(0, 0), face(0, 1), face(1, 0), face(1, 1)] == [(True, 0), (False, 0), (True, 0), (False, 0)]
    assert face(1, 1) == (True, 1)  # the same face twice on one frame: a new stream
    assert face(1) == (True, 1)  # a frame's message without face_id comes once
    assert numbering.lost == 2
