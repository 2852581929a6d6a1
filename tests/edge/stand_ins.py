"""Small stand-ins for the heavy parts (engine, flow, spotter), so stages can be tested on their own."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from edge.messages import Message
from engines.artifact import Artifact, TensorInfo

CLASSES = ("negative", "positive", "surprise")


def event_schema() -> dict:
    return json.loads((resources.files("edge") / "schema" / "event.schema.json").read_text())


class FakeEngine:
    """Probabilities from the mean flow, so different inputs give different answers."""

    def __init__(self, shape=(1, 3, 28, 28)) -> None:
        self.meta = Artifact(
            family="fake",
            model_id="f" * 64,
            inputs=(TensorInfo("flow", shape, "float32", "onset->apex optical flow u, v, strain"),),
            outputs=(TensorInfo("probs", (1, 3), "float32", "class probabilities"),),
            classes=CLASSES,
        )
        self.calls = []
        self.closed = False

    def input_spec(self):
        return self.meta.inputs

    def infer(self, inputs):
        x = inputs["flow"]
        assert x.shape == self.meta.inputs[0].shape and x.dtype == np.float32
        self.calls.append(x)
        logits = np.array([0.0, float(x.mean()) * 10, -float(x.mean()) * 10])
        e = np.exp(logits - logits.max())
        return {"logits": logits[None], "probs": (e / e.sum())[None].astype(np.float32)}

    def close(self):
        self.closed = True


def fake_flow(onset, apex, params, size=28):
    """(size, size, 3) from the crop difference: a stand-in with the real function's signature."""
    import cv2

    d = cv2.resize(apex.astype(np.float32) - onset.astype(np.float32), (size, size)) / 255.0
    return np.stack([d, d, np.abs(d)], axis=-1)


def interval(seq: int, t0_ns: int = 1_000_000_000, brighter: int = 40, kind: str = "micro") -> Message:
    onset = np.full((64, 64), 100, np.uint8)
    apex = onset.astype(np.int16)
    apex[20:40, 20:40] += brighter
    apex = apex.astype(np.uint8)
    def point(s):
        return {"seq": s, "t_capture_ns": t0_ns + s * 33_333_333}
    return Message(
        "interval",
        {"kind": kind, "score": 2.5, "fps": 30.0, "box": [10, 20, 100, 120],
         "onset": point(seq), "apex": point(seq + 3), "offset": point(seq + 6),
         "stamps": [["capture", t0_ns, t0_ns + 1_000_000], ["track", t0_ns + 2_000_000, t0_ns + 9_000_000]]},
        {"onset": onset, "apex": apex},
    )


class ListSource:
    name = "list"

    def __init__(self, messages):
        self.messages = list(messages)

    def open(self):
        pass

    def read(self):
        return self.messages.pop(0) if self.messages else None

    def close(self):
        pass


def artifact_for_tests(tmp_path) -> Path:
    """The packaged default artifact when this checkout has it, else a tiny linear flow model."""
    import importlib.util
    from pathlib import Path

    from engines.errors import MestreamError

    try:
        from engines import default_artifact_path

        return default_artifact_path()
    except MestreamError:
        pass
    helper = Path(__file__).resolve().parent.parent / "engines" / "tiny_artifacts.py"
    spec = importlib.util.spec_from_file_location("mestream_tiny_artifacts", helper)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_linear_onnx(tmp_path / "tiny.onnx", module.tiny_artifact_meta())


def free_port() -> int:
    import socket

    with socket.socket() as s:  # the OS releases it at once; a closed zmq socket lets go of its port later
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage_processes_of(pid: int) -> list[int]:
    """Stage processes started by the supervisor `pid` (it passes its pid as their last argument)."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"edge.process" in argv and str(pid).encode() in argv:
            found.append(int(entry.name))
    return found


# [runtime] for tests with real processes: hangs and restarts show within seconds
FAST_RUNTIME = {"heartbeat_s": 0.2, "hang_timeout_s": 1.5, "startup_timeout_s": 30.0,
                "restart_backoff_min_s": 0.2, "restart_backoff_max_s": 2.0, "stop_timeout_s": 2.0}


def wait_until(cond, timeout: float) -> bool:
    """Poll cond() every 50 ms until it holds (True) or timeout seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def tiny_video(path, n: int, fps: float = 30.0):
    """A 64x48 MJPG file of n frames whose grey level counts the frame: a source that costs nothing to read."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), i % 255, np.uint8))
    w.release()
    return path
