"""deploy/bin/mestream-start.sh: doctor first, the TensorRT engine built at start on a GPU device, then run.

The script is run for real with MESTREAM_BIN pointing at a stand-in that records its arguments, so each
branch is checked without a GPU; the recorded command lines are then parsed by the real `mestream` parser
wherever the jobs they call are registered.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "bin" / "mestream-start.sh"

FAKE = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_LOG"
if [ "$*" = "-q doctor --require gpu" ]; then exit "$FAKE_GPU_RC"; fi
exit 0
"""


def _start(tmp_path: Path, gpu: bool, *extra: str, **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    fake = tmp_path / "mestream"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    full_env = {
        "PATH": os.environ["PATH"],
        "MESTREAM_BIN": str(fake),
        "FAKE_LOG": str(log),
        "FAKE_GPU_RC": "0" if gpu else "1",
        "MESTREAM_ENGINE_CACHE": str(tmp_path / "engines"),
        "MESTREAM_PYTHON": sys.executable,
        **env,
    }
    done = subprocess.run(["sh", str(SCRIPT), *extra], env=full_env, capture_output=True, text=True, timeout=30)
    calls = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_without_a_source_it_stops_before_running_anything_and_says_what_to_set(tmp_path):
    done, calls = _start(tmp_path, gpu=True)
    assert done.returncode != 0
    assert "MESTREAM_SOURCE" in done.stderr
    assert calls == []


def test_a_cpu_device_runs_on_onnx_runtime_and_builds_no_engine(tmp_path):
    done, calls = _start(tmp_path, gpu=False, MESTREAM_SOURCE="cam:0")
    assert done.returncode == 0, done.stderr
    assert calls[0] == ["doctor", "--require", "cpu"]
    assert not any("build-engine" in c for c in calls)
    assert calls[-1] == ["run", "--source", "cam:0"]


def test_a_gpu_device_builds_the_engine_into_the_cache_before_it_runs(tmp_path):
    artifact = tmp_path / "model.onnx"
    done, calls = _start(
        tmp_path, True, "--record", "/tmp/events.jsonl",
        MESTREAM_SOURCE="cam:0", MESTREAM_TOPOLOGY="/etc/t.toml", MESTREAM_ARTIFACT=str(artifact),
    )
    assert done.returncode == 0, done.stderr
    build = next(i for i, c in enumerate(calls) if c[0] == "build-engine")
    run = next(i for i, c in enumerate(calls) if c[0] == "run")
    assert build < run
    cache = str(tmp_path / "engines")
    assert calls[build] == ["build-engine", "--artifact", str(artifact), "--fp16", "--out-dir", cache]
    assert (tmp_path / "engines").is_dir()
    assert calls[run] == ["run", "--topology", "/etc/t.toml", "--artifact", str(artifact), "--source", "cam:0", "--record", "/tmp/events.jsonl"]


def test_without_an_artifact_setting_the_packaged_model_is_built_or_its_absence_named(tmp_path):
    import engines
    from engines.errors import MestreamError

    done, calls = _start(tmp_path, True, MESTREAM_SOURCE="cam:0", MESTREAM_PRECISION="fp32")
    try:
        packaged = str(engines.default_artifact_path())
    except MestreamError:
        assert done.returncode == 2 and "MESTREAM_ARTIFACT" in done.stderr
        assert not any(c[0] in ("build-engine", "run") for c in calls)
        return
    assert done.returncode == 0, done.stderr
    assert ["build-engine", "--artifact", packaged, "--out-dir", str(tmp_path / "engines")] in calls


def test_int8_without_calibration_data_is_refused(tmp_path):
    done, calls = _start(tmp_path, gpu=True, MESTREAM_SOURCE="cam:0", MESTREAM_PRECISION="int8")
    assert done.returncode != 0 and "MESTREAM_CALIB" in done.stderr
    assert calls == []


@pytest.mark.parametrize("setting", [{"MESTREAM_BACKEND": "cuda"}, {"MESTREAM_PRECISION": "fp8"}])
def test_an_unknown_setting_is_refused_with_the_expected_values(tmp_path, setting):
    done, calls = _start(tmp_path, gpu=True, MESTREAM_SOURCE="cam:0", **setting)
    assert done.returncode == 2
    assert "expected" in done.stderr
    assert calls == []


def test_the_command_lines_it_makes_parse_with_the_real_cli(tmp_path):
    from edge.cli import build_parser

    (tmp_path / "a.onnx").write_bytes(b"")
    _, calls = _start(tmp_path, gpu=True, MESTREAM_SOURCE="cam:0", MESTREAM_ARTIFACT=str(tmp_path / "a.onnx"))
    parser = build_parser()
    for argv in calls:
        parser.parse_args(argv)  # SystemExit (exit 2) on any option the job does not have
