import gc
import time
import weakref

import numpy as np
import pytest

from edge.stages.base import run_chain
from edge.stages.capture import Capture, CaptureOptions, source_kind
from engines.errors import MestreamError


def _write_video(path, n=12, size=(64, 48), fps=30.0):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        frame = np.full((size[1], size[0], 3), i * 10 % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return path


class Collect:
    name = "collect"

    def open(self):
        pass

    def process(self, msg):
        return [msg]

    def close(self):
        pass


def test_source_uris_are_told_apart():
    assert source_kind("cam:0") == "camera"
    assert source_kind("rtsp://10.0.0.2/stream") == "url"
    assert source_kind("http://host/x.mjpg") == "url"
    assert source_kind("videotestsrc ! videoconvert ! appsink") == "gstreamer"
    assert source_kind("clip.mp4") == "file"


def test_every_frame_of_a_file_comes_numbered_and_timed(tmp_path):
    video = _write_video(tmp_path / "v.avi")
    out = run_chain(Capture(str(video), fast=True), [Collect()])
    assert [m.header["seq"] for m in out] == list(range(12))
    times = [m.header["t_capture_ns"] for m in out]
    assert times == sorted(times)
    assert out[0].arrays["image"].shape == (48, 64, 3) and out[0].header["fps"] == pytest.approx(30.0, rel=0.01)
    assert all(m.header["gap"] == 0 for m in out)


def test_files_are_paced_at_their_frame_rate_unless_fast(tmp_path):
    video = _write_video(tmp_path / "v.avi", n=10, fps=50.0)
    t = time.monotonic()
    run_chain(Capture(str(video)), [Collect()])
    paced = time.monotonic() - t
    t = time.monotonic()
    run_chain(Capture(str(video), fast=True), [Collect()])
    fast = time.monotonic() - t
    assert paced >= 0.17 and fast < paced  # 9 intervals of 20 ms


def test_mono_and_downscaling_happen_once_at_capture(tmp_path):
    video = _write_video(tmp_path / "v.avi", n=2, size=(128, 96))
    out = run_chain(Capture(str(video), fast=True, options=CaptureOptions(max_width=64, color="mono")), [Collect()])
    assert out[0].arrays["image"].shape == (48, 64) and out[0].arrays["image"].dtype == np.uint8


def test_variable_frame_rate_files_use_their_timestamps(assets):
    cap = Capture(str(assets / "videos" / "pyfeat_face_noface.mov"), fast=True)
    out = run_chain(cap, [Collect()], limit=30)
    stamps = [m.header["t_media_ms"] for m in out]
    assert stamps == sorted(stamps) and 20 <= cap.fps <= 120


@pytest.mark.parametrize(
    "source, words",
    [
        ("cam:97", "no camera at index 97"),
        ("cam:x", "not a number"),
        ("/nonexistent/clip.mp4", "no such file"),
    ],
)
def test_a_source_that_cannot_be_opened_is_one_clear_error(source, words):
    with pytest.raises(MestreamError, match=words):
        Capture(source).open()


def test_a_file_that_is_not_a_video_is_refused(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(MestreamError, match="cannot be opened as video"):
        Capture(str(junk)).open()


def test_impossible_options_are_refused():
    with pytest.raises(MestreamError, match="max_width"):
        Capture("x.mp4", options=CaptureOptions(max_width=-5))
    with pytest.raises(MestreamError, match="color"):
        Capture("x.mp4", options=CaptureOptions(color="purple"))


def test_a_live_url_that_stops_and_comes_back_is_reopened_with_a_gap(tmp_path):
    import functools
    import http.server
    import socket
    import threading

    _write_video(tmp_path / "live.avi", n=6)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))

    class Quiet(handler.func):
        def log_message(self, *args):
            pass

    def serve():
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(tmp_path)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    server = serve()
    cap = Capture(f"http://127.0.0.1:{port}/live.avi", options=CaptureOptions(reconnect_max_s=0.3))
    cap.open()
    try:
        msgs = [cap.read() for _ in range(7)]  # 6 frames, then the stream ends
        assert [m.topic for m in msgs] == ["frame"] * 6 + ["status"] and msgs[-1].header["event"] == "source_lost"
        server.shutdown()
        server.server_close()
        retry = cap.read()
        assert retry.topic == "status" and retry.header["event"] == "source_retry"
        server = serve()
        back = cap.read()
        assert back.header["event"] == "source_back"
        frame = cap.read()
        assert frame.topic == "frame" and frame.header["seq"] == 6 and frame.header["gap"] == 1
    finally:
        cap.close()
        server.shutdown()
        server.server_close()


def test_frames_are_decoded_into_buffers_used_again_once_nothing_holds_them(tmp_path):
    video = _write_video(tmp_path / "v.avi", n=30)
    cap = Capture(str(video), fast=True)
    cap.open()
    try:
        held = [cap.read() for _ in range(12)]  # more than the pool: every frame its own buffer, none overwritten
        assert len({m.arrays["image"].ctypes.data for m in held}) == 12
        first = [m.arrays["image"].copy() for m in held]
        later = [cap.read() for _ in range(5)]
        for m, values in zip(held, first):
            np.testing.assert_array_equal(m.arrays["image"], values)
        refs = [weakref.ref(m.arrays["image"]) for m in held]
        del held, m, later
        gc.collect()
        # the first reads' buffers live on in the pool (ids of live objects: no reference taken); the rest are gone
        assert all(r() is not None for r in refs[:8]) and all(r() is None for r in refs[8:])
        pool = {id(r()) for r in refs[:8]}
        again = [cap.read().arrays["image"] for _ in range(4)]
        assert {id(a) for a in again} <= pool  # the messages are gone: their buffers are read into again
    finally:
        cap.close()
