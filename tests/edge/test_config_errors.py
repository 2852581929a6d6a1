"""Configuration mistakes stop `mestream run` at start with one line: unknown keys, wrong types, impossible
values, a spotting window shorter than a micro-expression, an engine the topology cannot feed."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from stand_ins import free_port

PIPELINE = """[[process]]
name = "capture"
stages = ["capture"]
[[process]]
name = "track"
stages = ["track"]
[[process]]
name = "spot"
stages = ["spot"]
[[process]]
name = "infer"
stages = ["classify", "publish"]
"""


def _tiny_artifacts():
    helper = Path(__file__).resolve().parent.parent / "engines" / "tiny_artifacts.py"
    spec = importlib.util.spec_from_file_location("mestream_tiny_artifacts_cfg", helper)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _video(path: Path) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    "extra, words",
    [
        ('[stages.spot]\nwindow = 3\n', "unknown key 'window'"),
        ('[runtime]\nheartbeat_s = "fast"\n', "heartbeat_s = 'fast': expected a number"),
        ('[stages.track]\ndetect_every = 2.5\n', "expected an integer"),
        ('[runtime]\nhang_timeout_s = -1.0\n', "expected a positive number of seconds"),
        ('[stages.capture]\nmax_width = -640\n', "max_width = -640"),
        ('[stages.spot]\nlag_s = -0.1\n', "lag_s=-0.1 is negative"),
        ('[stages.spot]\nhistory_s = 0.2\n', "history_s=0.2 is not above micro_max_s=0.5"),
        ('[stages.spot]\nmax_event_s = 0.3\n', "max_event_s=0.3 is not above micro_max_s"),
        ('[stages.classify]\ndevice = "tpu"\n', "device = 'tpu'"),
        ('[publish]\nhwm = 0\n', "hwm = 0"),
        ("ENGINE", "metadata declares input 'audio'"),
    ],
    ids=["unknown key", "wrong type", "float for an integer", "negative timeout", "negative width", "negative lag",
         "window shorter than an ME", "event cap below an ME", "unknown device", "zero hwm", "engine that does not fit"],
)
def test_a_configuration_mistake_is_one_line_at_start_and_starts_nothing(tmp_path, extra, words):
    topology = tmp_path / "t.toml"
    args = []
    if extra == "ENGINE":  # an artifact whose input this runtime cannot feed (audio where flow is expected)
        tiny = _tiny_artifacts()
        meta = tiny.tiny_artifact_meta()
        info = meta.inputs[0]
        meta = dataclasses.replace(meta, inputs=(dataclasses.replace(info, name="audio", meaning="audio spectrogram"),))
        args = ["--artifact", str(tiny.make_linear_onnx(tmp_path / "audio.onnx", meta))]
        extra = ""
    topology.write_text(PIPELINE + extra)
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--source", str(_video(tmp_path / "v.avi")),
                             "--topology", str(topology), "--publish", f"tcp://127.0.0.1:{free_port()}", *args],
                            capture_output=True, text=True, timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("mestream run: error:") and words in lines[0], result.stderr
