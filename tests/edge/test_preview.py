"""mestream preview: the tap in each process, the supervisor's relay, the viewer's state, the local web page,
and the whole thing on a real run in headless Chromium (skipped with the apt line when it is missing)."""

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import redirect_stderr

import cv2
import numpy as np
import pytest
import zmq
from stand_ins import artifact_for_tests, free_port

from edge.messages import Message
from edge.preview.relay import PreviewRelay, check_preview_endpoint
from edge.preview.server import PreviewServer
from edge.preview.state import PreviewState
from edge.preview.tap import PreviewTap, landmarks_in_source
from engines.errors import MestreamError

CHROMIUM_APT = "apt-get update && apt-get install -y chromium"


def _first_frame(assets) -> np.ndarray:
    cap = cv2.VideoCapture(str(assets / "videos" / "pyfeat_single_face.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def _face_for(frame: np.ndarray, seq: int) -> Message:
    """A face message as the track stage makes it: crop 2x smaller than the frame, landmarks in crop pixels."""
    transform = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -5.0]])
    source_points = np.array([[300.0, 150.0], [340.0, 150.0], [320.0, 200.0]])
    crop_points = source_points @ transform[:, :2].T + transform[:, 2]
    return Message("face", {"seq": seq, "t_capture_ns": seq, "fps": 30.0, "found": True, "box": [280, 120, 80, 100],
                            "transform": transform.tolist()},
                   {"crop": np.full((128, 128), 90, np.uint8), "landmarks": crop_points.astype(np.float32)})


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_landmarks_go_back_from_crop_to_source_pixels():
    from edge.perception.align import apply_transform

    angle = np.radians(12.0)
    t = np.array([[1.7 * np.cos(angle), -1.7 * np.sin(angle), -300.0], [1.7 * np.sin(angle), 1.7 * np.cos(angle), -90.0]])
    source = np.array([[250.0, 130.0], [400.5, 160.25], [320.0, 300.0]])
    back = landmarks_in_source(apply_transform(t, source), t.tolist())
    assert np.allclose(back, source, atol=1e-3)


def test_a_preview_endpoint_that_other_hosts_could_reach_is_refused():
    for bad in ("tcp://0.0.0.0:5561", "tcp://192.168.1.4:5561", "inproc://preview", "udp://127.0.0.1:1"):
        with pytest.raises(MestreamError, match="preview endpoint"):
            check_preview_endpoint(bad)
    check_preview_endpoint("tcp://127.0.0.1:5561")
    check_preview_endpoint("ipc:///tmp/x/preview")


def test_the_topology_refuses_a_preview_rate_that_is_not_a_preview():
    import tomllib

    from edge.topology import default_topology_path, load_topology, parse_topology

    data = tomllib.loads(default_topology_path().read_text())
    data["publish"]["preview_fps"] = 60.0
    with pytest.raises(MestreamError, match="preview_fps"):
        parse_topology(data)
    assert load_topology().publish.preview == ""  # off unless asked for


def test_the_tap_sends_frames_at_the_preview_rate_through_the_relay_and_signal_points_all(assets, tmp_path):
    frame = _first_frame(assets)
    ctx = zmq.Context()
    port = free_port()
    relay = PreviewRelay(ctx, f"ipc://{tmp_path}/preview", f"tcp://127.0.0.1:{port}")
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"pv.")
    sub.connect(f"tcp://127.0.0.1:{port}")
    tap = PreviewTap(ctx, f"ipc://{tmp_path}/preview", "track", fps=10.0)
    from edge import bus

    try:
        # subscriptions travel sub -> relay -> tap: wait until one batch comes through
        deadline = time.monotonic() + 5
        while not sub.poll(50):
            assert time.monotonic() < deadline, "no preview message came through the relay"
            tap._points.append([0, 0.1, None])
            tap.flush()
        while sub.poll(50):
            sub.recv_multipart()
        t0 = time.monotonic()
        offers = 0
        slowest = 0.0
        while time.monotonic() - t0 < 0.55:
            face = _face_for(frame, offers + 1)
            face.header["spot_signal"] = 0.01 * offers
            face.header["spot_threshold"] = None if offers < 3 else 0.5
            t = time.perf_counter()
            tap.offer(Message("frame", {"seq": offers + 1}, {"image": frame}), [face])
            tap.offer(face, [])
            slowest = max(slowest, time.perf_counter() - t)
            offers += 1
            time.sleep(0.002)  # a fast camera's pace, so the test sees time-based batches
        tap.flush()
        got = []
        while sub.poll(300):
            got.append(bus.decode(sub.recv_multipart(copy=False)))
    finally:
        tap.close()
        relay.stop()
        sub.close(0)
        ctx.term()
    frames = [m for m in got if m.topic == "pv.frame"]
    points = [p for m in got if m.topic == "pv.signal" for p in m.header["points"]]
    assert offers > 20
    assert 3 <= len(frames) <= 7, f"{len(frames)} frames in 0.55 s at 10 fps from {offers} offers"
    assert slowest < 0.5  # a JPEG at most (on a loaded 2-core machine): nothing waits for the viewer
    assert [p[0] for p in points] == list(range(1, offers + 1))  # every point, in order, in batches
    assert points[0][2] is None and points[-1][2] == 0.5
    f = frames[0]
    assert f.header["found"] and f.header["width"] == frame.shape[1] and f.header["box"] == [280, 120, 80, 100]
    assert np.allclose(f.arrays["landmarks"], [[300, 150], [340, 150], [320, 200]], atol=1e-3)
    decoded = cv2.imdecode(f.arrays["jpeg"], cv2.IMREAD_COLOR)
    assert decoded.shape[1] == 640 and float(np.abs(decoded.astype(int) - frame.astype(int)).mean()) < 6
    assert cv2.imdecode(f.arrays["crop"], cv2.IMREAD_GRAYSCALE).shape == (128, 128)


def test_the_viewer_state_is_plain_json_and_a_new_run_restarts_the_signal():
    state = PreviewState(signal_points=5)
    state.apply(Message("pv.signal", {"fps": 30.0, "points": [[i, 0.1 * i, float("inf")] for i in range(8)]}))
    snap = state.snapshot()
    assert [p[0] for p in snap["signal"]] == [3, 4, 5, 6, 7] and snap["signal"][0][2] is None
    state.apply(Message("pv.signal", {"fps": 30.0, "points": [[0, 0.2, 0.9]]}))
    assert state.snapshot()["signal"] == [[0, 0.2, 0.9]]
    state.apply(Message("pv.event", {"kind": "micro", "label": "surprise", "probabilities": {"surprise": 0.7, "other": 0.3},
                                     "onset": {"frame": 1}, "apex": {"frame": 3}, "offset": {"frame": 6}}))
    state.apply(Message("pv.status", {"stage": "track", "event": "face_lost", "detail": "no face in the frame"}))
    snap = state.snapshot()
    assert snap["events"][0]["label"] == "surprise" and snap["events"][0]["confidence"] == 0.7
    assert snap["status"] == [{"source": "", "stage": "track", "event": "face_lost", "detail": "no face in the frame"}]
    json.dumps(snap, allow_nan=False)


def test_the_page_is_served_on_loopback_only_and_a_taken_port_is_one_line():
    with PreviewServer("", port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        code, page = _get(server.url)
        assert code == 200 and b"mestream preview" in page
        code, body = _get(server.url + "state.json")
        assert code == 200 and json.loads(body)["received"] == 0
        assert _get(server.url + "frame.jpg")[0] == 404  # no frame yet
        with pytest.raises(MestreamError, match=f"127.0.0.1:{server.port}.*--port"):
            PreviewServer("", port=server.port)


def test_mestream_preview_refuses_a_remote_endpoint_in_one_line():
    r = subprocess.run([sys.executable, "-m", "edge.cli", "preview", "--endpoint", "tcp://10.1.2.3:5561", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "preview endpoint 'tcp://10.1.2.3:5561'" in r.stderr and "Traceback" not in r.stderr


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip(f"headless Chromium is not installed (Debian: {CHROMIUM_APT})")


def _chromium_run(chromium: str, profile, url: str, *extra: str) -> subprocess.CompletedProcess:
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1100,900",
            "--virtual-time-budget=3000", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=90)


@pytest.mark.slow
def test_a_real_run_shows_its_frame_signal_and_events_in_headless_chromium(assets, tmp_path):
    chromium = _chromium()
    artifact = artifact_for_tests(tmp_path)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    record = tmp_path / "events.jsonl"
    with PreviewServer(endpoint, port=0) as server:  # the viewer first: it waits for the run
        run = subprocess.run(
            [sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(assets / "videos" / "pyfeat_single_face.mp4"),
             "--fast", "--artifact", str(artifact), "--record", str(record),
             "--publish", f"tcp://127.0.0.1:{free_port()}", "--preview", endpoint],
            capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        events = [e for e in map(json.loads, record.read_text().splitlines()) if e["schema"] == "mestream.event"]
        assert events, "the run spotted nothing: nothing to show"
        deadline = time.monotonic() + 5
        while len(server.state.snapshot()["events"]) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        snap = server.state.snapshot()
        assert snap["frame"]["found"] and len(snap["frame"]["landmarks"]) >= 468 and snap["has_crop"]
        assert 0 < snap["frame"]["seq"] <= 71
        assert [p[0] for p in snap["signal"]][-1] == 71 and any(p[2] is not None for p in snap["signal"])
        assert [e["label"] for e in snap["events"]] == [e["label"] for e in events]

        shot = tmp_path / "preview.png"
        r = _chromium_run(chromium, tmp_path / "profile1", server.url, f"--screenshot={shot}")
        assert shot.is_file(), r.stderr[-2000:]
        dom = _chromium_run(chromium, tmp_path / "profile2", server.url, "--dump-dom").stdout
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (900, 1100)
    # not blank: the camera frame alone brings thousands of colours; an empty page has a handful
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2000
    assert float(image.std()) > 20
    label = events[-1]["label"]
    assert f'data-label="{label}"' in dom and f'<td class="label">{label}</td>' in dom
    assert f'frame {snap["frame"]["seq"]}, 640x360' in dom
    confidence = round(100 * events[-1]["probabilities"][label])
    assert f'<td class="confidence">{confidence}%</td>' in dom
    signal_info = dom.split('id="signalinfo"', 1)[1].split("</span>", 1)[0]
    assert f"frames {snap['signal'][0][0]}..71 at 30.0 fps" in signal_info and "threshold" in signal_info
    if os.environ.get("MESTREAM_KEEP_PREVIEW_SHOT"):  # to look at it: MESTREAM_KEEP_PREVIEW_SHOT=/tmp/shot.png
        shutil.copy(shot, os.environ["MESTREAM_KEEP_PREVIEW_SHOT"])


def test_mestream_preview_serves_until_its_duration_and_says_where():
    r = subprocess.run([sys.executable, "-m", "edge.cli", "preview", "--endpoint", f"tcp://127.0.0.1:{free_port()}",
                        "--port", "0", "--duration", "0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "open http://127.0.0.1:" in r.stdout and "Traceback" not in r.stderr


def test_the_page_gets_the_image_its_poll_named_not_a_newer_one():
    state = PreviewState()
    for i in range(3):
        jpeg = np.frombuffer(f"jpeg{i}".encode(), np.uint8)  # the state stores bytes; it never decodes them
        state.apply(Message("pv.frame", {"seq": i, "width": 4, "height": 4, "found": False}, {"jpeg": jpeg}))
    with PreviewServer("", port=0, state=state) as server:
        assert _get(server.url + "frame.jpg?id=2")[1] == b"jpeg1"
        assert _get(server.url + "frame.jpg?id=3")[1] == b"jpeg2"
        assert _get(server.url + "frame.jpg")[1] == b"jpeg2"  # no id: the latest


# -- several sources ------------------------------------------------------------------------------------


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def _frame_of(source: str, image: np.ndarray, found: bool, box=None) -> Message:
    h, w = image.shape[:2]
    header = {"source": source, "seq": 1, "width": w, "height": h, "found": found, **({"box": box} if box else {})}
    return Message("pv.frame", header, {"jpeg": np.frombuffer(_jpeg(image), np.uint8)})


def test_the_viewer_keeps_each_source_s_frame_signal_and_events_apart():
    state = PreviewState()
    grey = np.full((48, 64, 3), 90, np.uint8)
    state.apply(_frame_of("front", grey, True, [1, 2, 3, 4]))
    state.apply(_frame_of("side", grey, False))
    state.apply(Message("pv.signal", {"source": "side", "fps": 30.0, "points": [[5, 0.1, 0.2]]}))
    state.apply(Message("pv.event", {"source": "side", "kind": "micro", "label": "surprise", "probabilities": {"surprise": 0.9}}))
    state.apply(Message("pv.status", {"source": "front", "stage": "track", "event": "face_lost", "detail": "gone"}))
    assert state.names() == ["front", "side"]
    front, side = state.snapshot("front"), state.snapshot("side")
    assert front["frame"]["found"] and not side["frame"]["found"] and front["frame"]["id"] != side["frame"]["id"]
    assert (front["signal"], side["signal"]) == ([], [[5, 0.1, 0.2]])
    assert (front["events"], [e["label"] for e in side["events"]]) == ([], ["surprise"])
    assert ([x["event"] for x in front["status"]], side["status"]) == (["face_lost"], [])
    assert state.snapshot()["source"] == "front"  # no choice: the first source seen
    with pytest.raises(KeyError):
        state.snapshot("back")


def test_the_tiles_put_every_source_in_a_grid_with_its_name_and_face_box(assets):
    frame = _first_frame(assets)  # 640x360
    black = np.zeros((480, 640, 3), np.uint8)
    frames = [("front", _jpeg(frame), {"width": 640, "height": 360, "found": True, "box": [280, 120, 80, 100]}),
              ("side", _jpeg(black), {"width": 640, "height": 480, "found": False}),
              ("door", _jpeg(frame), {"width": 640, "height": 360, "found": False})]
    from edge.preview.tiles import FACE, grid, tile_frames

    assert [grid(n) for n in (1, 2, 3, 4, 5, 7, 9, 10, 12)] == [(1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 3), (3, 3), (4, 3), (4, 3)]
    image, layout = tile_frames(frames, tile_width=480, tile_height=360)
    assert image.shape == (720, 960, 3) and layout == {"columns": 2, "rows": 2, "tile": [480, 360], "sources": ["front", "side", "door"]}
    # front, 640x360 shrunk to 480x270 and centred (45 px bars): the frame's pixels, its box in tile pixels
    inner = image[45 + 30 : 45 + 260, 10:470].astype(int)
    expect = cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA)[30:260, 10:470].astype(int)
    assert float(np.abs(inner - expect).mean()) < 8
    x, y = round(280 * 0.75), 45 + round(120 * 0.75)
    assert np.abs(image[y, x + 20].astype(int) - FACE).max() < 40  # the box's top edge
    assert int(image[5:17, 5:60].max()) > 150  # the name bar's text
    assert image[60:300, 490:950].max() < 30  # side: a black frame (no face: its name in red)
    assert image[360 + 45 + 30 : 360 + 300, 10:470].std() > 20  # door: the frame, third tile
    assert image[365:715, 485:955].max() == 0  # the fourth tile is empty


def test_the_page_serves_one_source_by_name_and_refuses_one_the_run_does_not_have():
    state = PreviewState()
    grey = np.full((48, 64, 3), 90, np.uint8)
    for name in ("front", "side"):
        state.apply(_frame_of(name, grey, False))
    with PreviewServer("", port=0, state=state) as server:
        code, body = _get(server.url + "state.json?source=side")
        snap = json.loads(body)
        assert code == 200 and snap["source"] == "side" and snap["sources"] == ["front", "side"]
        assert snap["tiles"] == {"columns": 2, "rows": 1, "sources": ["front", "side"]}
        code, body = _get(server.url + "state.json?source=back")
        assert code == 404 and body.decode() == "no source 'back' in this run's preview (its sources: front, side); pick one of them\n"
        code, body = _get(server.url + "tiles.jpg")
        assert code == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (360, 960, 3)
    with PreviewServer("", port=0, state=state, source="side") as server:
        snap = json.loads(_get(server.url + "state.json")[1])
        assert snap["source"] == "side" and snap["fixed"] and "tiles" not in snap


def test_the_tap_names_its_source_on_frames_signal_and_events(assets, tmp_path):
    frame = _first_frame(assets)
    ctx = zmq.Context()
    tap = PreviewTap(ctx, f"ipc://{tmp_path}/preview", "track-side", source="side")
    try:
        assert tap.frame_message(Message("frame", {"seq": 1}, {"image": frame}), _face_for(frame, 1)).header["source"] == "side"
        sent = []
        tap._send = lambda sock, msg, kind: sent.append(msg)
        tap._points.append([1, 0.1, None])
        tap.flush()
        tap.offer(None, [Message("me.status", {"stage": "track", "event": "face_found"})])
        assert [(m.topic, m.header["source"]) for m in sent] == [("pv.signal", "side"), ("pv.status", "side")]
    finally:
        tap.close()
        ctx.term()


def test_only_the_chosen_sources_chains_tap_the_preview(tmp_path):
    from dataclasses import replace

    from edge.process import RunOptions
    from edge.supervisor import plan_processes
    from edge.topology import load_topology

    topo = load_topology()
    run = RunOptions(source="a.mp4", sources=(("front", "a.mp4"), ("side", "b.mp4")),
                     publish=replace(topo.publish, preview="tcp://127.0.0.1:5561", preview_sources=("side",)))
    tapping = sorted(p.name for p in plan_processes(topo, run, tmp_path, "ipc://c") if p.preview)
    assert tapping == ["capture-side", "infer", "spot-side", "track-side"]


def test_mestream_run_refuses_a_preview_source_it_does_not_have_in_one_line(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    base = [sys.executable, "-m", "edge.cli", "run", "--source", f"front={a}", "--source", f"side={b}",
            "--publish", f"tcp://127.0.0.1:{free_port()}"]
    r = subprocess.run([*base, "--preview", f"tcp://127.0.0.1:{free_port()}", "--preview-source", "back"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "--preview-source back: no source of that name in this run (its sources: front, side)" in r.stderr
    r = subprocess.run([*base, "--preview-source", "side"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "add --preview" in r.stderr


def test_mestream_preview_refuses_a_source_name_no_source_can_have_in_one_line():
    r = subprocess.run([sys.executable, "-m", "edge.cli", "preview", "--endpoint", f"tcp://127.0.0.1:{free_port()}",
                        "--port", "0", "--source", "a.>"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "source name 'a.>'" in r.stderr


def test_mestream_preview_says_once_that_the_run_has_no_source_of_that_name():
    from edge.commands.preview import wait_for_source

    state = PreviewState()
    grey = np.full((48, 64, 3), 90, np.uint8)
    for name in ("front", "side"):
        state.apply(_frame_of(name, grey, False))
    err = io.StringIO()
    with PreviewServer("", port=0, state=state, source="back") as server, redirect_stderr(err):
        wait_for_source(server, "back", 1.6)
    assert err.getvalue() == ("mestream preview: no source 'back' in this run's preview (its sources: front, side); "
                              "pick one of them; the page waits for it\n")


@pytest.mark.slow
def test_a_real_two_source_run_shows_both_sources_tiled(assets, tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with PreviewServer(endpoint, port=0) as server:  # the viewer first: it waits for the run
        run = subprocess.run(
            [sys.executable, "-m", "edge.cli", "-q", "run", "--fast", "--artifact", str(artifact_for_tests(tmp_path)),
             "--source", f"front={assets / 'videos' / 'pyfeat_single_face.mp4'}",
             "--source", f"side={assets / 'videos' / 'casme2_sub01_EP02_01f.avi'}",
             "--publish", f"tcp://127.0.0.1:{free_port()}", "--preview", endpoint],
            capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stderr
        assert sorted(server.state.names()) == ["front", "side"]
        front, side = server.state.snapshot("front"), server.state.snapshot("side")
        assert (front["frame"]["width"], side["frame"]["width"]) == (640, 640)
        assert (front["frame"]["height"], side["frame"]["height"]) == (360, 480)
        assert front["frame"]["found"] and side["frame"]["found"] and front["signal"] and side["signal"]
        code, body = _get(server.url + "tiles.jpg")
        assert code == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (360, 960, 3)
        assert json.loads(_get(server.url + "state.json")[1])["tiles"]["columns"] == 2
