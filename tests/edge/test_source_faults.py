"""What cameras and files do to the capture stage: disappear, arrive truncated or corrupt, change frames.

Broken files are made in tmp_path from the real videos (cut short, bytes overwritten in the middle); a
camera is a stand-in VideoCapture that plays real frames and then fails, since no test machine has one.
"""

import os
import time

import numpy as np
import pytest

from edge.stages.base import run_chain
from edge.stages.capture import Capture, CaptureOptions
from engines.errors import MestreamError


def _read_all(cap: Capture, limit: int = 10_000) -> list:
    msgs = []
    cap.open()
    try:
        for _ in range(limit):
            msg = cap.read()
            if msg is None:
                return msgs
            msgs.append(msg)
    finally:
        cap.close()
    raise AssertionError(f"no end of stream after {limit} reads")


def test_a_truncated_file_gives_the_frames_it_still_holds_and_ends_cleanly(assets, tmp_path):
    data = (assets / "videos" / "casme2_sub01_EP02_01f.avi").read_bytes()  # 44 frames
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    msgs = _read_all(Capture(str(cut), fast=True))
    seqs = [m.header["seq"] for m in msgs if m.topic == "frame"]
    assert 5 < len(seqs) < 44 and seqs == list(range(len(seqs)))
    assert all(m.arrays["image"].shape == (480, 640, 3) for m in msgs if m.topic == "frame")


def test_a_truncated_file_that_lost_its_index_is_refused_in_one_line(assets, tmp_path):
    data = (assets / "videos" / "pyfeat_single_face.mp4").read_bytes()  # its moov atom is at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MestreamError, match="cannot be opened as video") as err:
        Capture(str(cut), fast=True).open()
    assert "\n" not in str(err.value)


def test_corrupt_frames_in_a_file_are_skipped_and_counted_and_the_file_ends_cleanly(assets, tmp_path):
    data = bytearray((assets / "videos" / "pyfeat_single_face.mp4").read_bytes())  # 72 frames
    rng = np.random.default_rng(3)
    middle = len(data) // 2
    for offset in range(middle, middle + 60_000, 4_000):  # damage about a dozen frames' worth of stream
        data[offset:offset + 500] = rng.bytes(500)
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    cap = Capture(str(bad), fast=True)
    msgs = _read_all(cap)
    frames = [m for m in msgs if m.topic == "frame"]
    assert 30 < len(frames) < 72
    assert cap.bad_frames > 0
    assert [m.header["seq"] for m in frames] == list(range(len(frames)))  # skipped frames leave no hole in seq
    assert all(m.arrays["image"].shape == (360, 640, 3) for m in frames)


class _Camera:
    """A stand-in cv2.VideoCapture for cam:N: plays `frames`, then stops; `down_for` failed reopens follow."""

    script: dict = {}

    def __init__(self, index, *args):
        s = self.script
        s["opens"] += 1
        self.opened = s["opens"] == 1 or s["opens"] > 1 + s["down_for"]
        self.frames = list(s["batches"].pop(0)) if self.opened and s["batches"] else []

    def isOpened(self):
        return self.opened

    def read(self):
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def get(self, prop):
        import cv2

        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop, value):
        return True

    def release(self):
        self.frames = []


@pytest.fixture
def camera(monkeypatch):
    import cv2

    _Camera.script = {"opens": 0, "down_for": 0, "batches": [], "real": cv2.VideoCapture}
    monkeypatch.setattr(cv2, "VideoCapture", _Camera)
    return _Camera.script


def _frames(video_capture, path, n, start=0):
    import cv2

    cap = video_capture(str(path))
    out = []
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        while len(out) < n:
            ok, image = cap.read()
            assert ok, f"{path} has fewer than {start + n} frames"
            out.append(image)
    finally:
        cap.release()
    return out


def test_a_camera_that_disappears_is_reopened_with_backoff_and_its_frames_resume_after_a_gap(camera):
    frame = np.full((48, 64, 3), 90, np.uint8)
    camera["batches"] = [[frame] * 5, [frame] * 3]
    camera["down_for"] = 3  # unplugged: three reopen attempts fail, the fourth finds it again
    cap = Capture("cam:0", options=CaptureOptions(reconnect_max_s=0.4))
    cap.open()
    try:
        msgs, took = [], []
        for _ in range(5 + 1 + 3 + 1 + 3):
            t = time.monotonic()
            msgs.append(cap.read())
            took.append(time.monotonic() - t)
    finally:
        cap.close()
    events = [m.header.get("event") if m.topic == "status" else m.topic for m in msgs]
    assert events == ["frame"] * 5 + ["source_lost"] + ["source_retry"] * 3 + ["source_back"] + ["frame"] * 3
    retries = [m.header["detail"] for m in msgs if m.header.get("event") == "source_retry"]
    assert all(r.endswith("next try in 0.40 s") for r in retries)  # 0.25 s doubled, capped at reconnect_max_s
    # each read returns within the backoff cap, so the host keeps sending heartbeats: no restart
    assert max(took) < 0.4 + 0.3
    assert 0.2 <= took[6] < took[7] and took[7] >= 0.38  # the first wait is 0.25 s, then the 0.4 s cap
    after = msgs[-3:]
    assert [m.header["seq"] for m in after] == [5, 6, 7] and after[0].header["gap"] == 1 and after[1].header["gap"] == 0
    assert cap.reconnects == 1


class _Tap:
    """A pass-through stage that keeps what went by."""

    name = "tap"

    def __init__(self):
        self.seen = []

    def open(self):
        pass

    def process(self, msg):
        self.seen.append(msg)
        return [msg]

    def close(self):
        pass


def test_frames_that_change_size_or_pixel_format_mid_stream_restart_downstream_cleanly_and_are_counted(assets, camera):
    import cv2

    from edge.spotting.params import SpotParams
    from edge.spotting.regional import RegionalSpotter
    from edge.stages.face_tracking import FaceTracking

    wide = _frames(camera["real"], assets / "videos" / "pyfeat_single_face.mp4", 20)  # 640x360 colour
    tall = _frames(camera["real"], assets / "videos" / "evm_face.mp4", 40)  # 528x592 colour
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in tall[20:]]  # same size, one channel
    alpha = [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in wide[:10]]  # back to 640x360, with alpha
    camera["batches"] = [wide + tall[:20] + grey + alpha]
    cap = Capture("cam:0")
    tap = _Tap()
    spot = RegionalSpotter(SpotParams(warmup_s=0.1))
    n_frames = 20 + 20 + 20 + 10
    out = run_chain(cap, [FaceTracking(), tap, spot], limit=n_frames + 3)  # + one status per change

    assert cap.format_changes == 3
    changes = [m.header for m in out if m.topic == "status" and m.header["event"] == "source_format"]
    assert [(c["at_seq"], c["format_changes"]) for c in changes] == [(20, 1), (40, 2), (60, 3)]
    assert "from 360x640x3 uint8 to 592x528x3 uint8" in changes[0]["detail"]
    faces = [m for m in tap.seen if m.topic == "face"]
    assert [m.header["seq"] for m in faces] == list(range(n_frames))  # every frame tracked, none lost
    assert [m.header["seq"] for m in faces if m.header.get("gap")] == [20, 40, 60]
    for start, end in ((0, 20), (20, 40), (40, 60), (60, 70)):  # the face is found again in every segment
        assert sum(m.header["found"] for m in faces[start:end]) >= (end - start) * 0.7, (start, end)
    crops = {m.arrays["crop"].shape for m in faces if m.header["found"]}
    assert len(crops) == 1  # the aligned crop never changes size, whatever the frames did
    restarts = [m.header["detail"] for m in out if m.topic == "status" and m.header.get("event") == "restart"]
    assert any("before seq 40" in r for r in restarts) and any("before seq 60" in r for r in restarts)


def test_the_pixel_format_a_stream_started_with_is_kept_when_the_source_switches(camera):
    colour = np.full((48, 64, 3), 120, np.uint8)
    camera["batches"] = [[colour, colour[:, :, 0].copy(), (colour.astype(np.uint16) << 8)[:, :, 0].copy(),
                          np.dstack([colour, np.full((48, 64), 255, np.uint8)])]]
    cap = Capture("cam:0")
    cap.open()
    try:
        msgs = [cap.read() for _ in range(4 + 3)]
    finally:
        cap.close()
    frames = [m for m in msgs if m.topic == "frame"]
    assert len(frames) == 4 and cap.format_changes == 3
    assert all(f.arrays["image"].shape == (48, 64, 3) and f.arrays["image"].dtype == np.uint8 for f in frames)
    assert all(int(f.arrays["image"].mean()) == 120 for f in frames)


def test_a_file_that_ends_in_the_middle_of_a_run_stops_every_process_with_exit_zero(assets, tmp_path):
    import subprocess
    import sys

    from stand_ins import free_port

    data = (assets / "videos" / "casme2_sub01_EP02_01f.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    topo = tmp_path / "t.toml"
    topo.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n[[process]]\nname = "out"\nstages = ["publish"]\n')
    record = tmp_path / "r.jsonl"
    result = subprocess.run([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(cut), "--fast", "--topology", str(topo),
                             "--record", str(record), "--publish", f"tcp://127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert record.exists() and "Traceback" not in result.stderr


def test_a_live_stream_whose_server_stops_and_returns_is_followed_by_a_real_run_without_restarting_anything(tmp_path):
    """`mestream run` on an HTTP stream served in the test: the server goes away and comes back; capture
    reports lost / retry / back on me.status while it keeps its heartbeats, so nothing is restarted."""
    import functools
    import http.server
    import json
    import signal
    import socket
    import subprocess
    import sys
    import threading

    import cv2
    import zmq
    from stand_ins import free_port

    writer = cv2.VideoWriter(str(tmp_path / "live.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def serve():
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(tmp_path)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    topo = tmp_path / "t.toml"
    topo.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n[[process]]\nname = "out"\nstages = ["publish"]\n'
                    '[stages.capture]\nreconnect_max_s = 0.5\n')
    pub = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RECONNECT_IVL, 20)
    sub.setsockopt(zmq.SUBSCRIBE, b"me.status")
    sub.connect(pub)
    server = serve()
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "-q", "run", "--source", f"http://127.0.0.1:{port}/live.avi",
                             "--topology", str(topo), "--publish", pub], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[dict] = []

    def until(cond, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if sub.poll(100):
                seen.append(json.loads(sub.recv_multipart()[1]))
                if cond():
                    return True
        return False

    def events():
        return [s["event"] for s in seen if s.get("stage") == "capture"]

    try:
        assert until(lambda: "source_lost" in events(), 30), events()  # the 30 frames end: the stream is "lost"
        server.shutdown()
        server.server_close()
        assert until(lambda: events().count("source_retry") >= 3, 10), events()
        server = serve()
        assert until(lambda: "source_back" in events(), 10), events()
        assert until(lambda: any(s["event"] == "metrics" for s in seen[-3:]), 5)
        metrics = [s for s in seen if s["event"] == "metrics"][-1]["processes"]
        assert all(not p["restarts"] for p in metrics.values()), metrics
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close(0)
        ctx.term()
        server.shutdown()
        server.server_close()
    assert "Traceback" not in proc.stderr.read()
