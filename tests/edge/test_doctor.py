import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.commands import doctor
from edge.commands.doctor import Check, Machine
from engines.errors import MestreamError


def _machine(tmp_path: Path) -> Machine:
    (tmp_path / "dev").mkdir()
    (tmp_path / "sys").mkdir()
    return Machine(
        dev_dir=tmp_path / "dev",
        v4l_sysfs=tmp_path / "sys",
        tegra_release=tmp_path / "nv_tegra_release",
        device_tree_model=tmp_path / "model",
        cpuinfo=tmp_path / "cpuinfo",
        env={},
    )


def test_cameras_are_listed_in_numeric_order_with_their_sysfs_names(tmp_path):
    machine = _machine(tmp_path)
    for n in (10, 0, 1):
        (machine.dev_dir / f"video{n}").touch()
    (machine.v4l_sysfs / "video0").mkdir()
    (machine.v4l_sysfs / "video0" / "name").write_text("HD Pro Webcam C920\n")
    check = doctor.check_cameras(machine)
    assert check.ok
    assert check.detail.index("video0") < check.detail.index("video1") < check.detail.index("video10")
    assert "HD Pro Webcam C920" in check.detail


def test_no_camera_is_missing_and_says_how_to_pass_one_into_a_container(tmp_path):
    check = doctor.check_cameras(_machine(tmp_path))
    assert not check.ok
    assert "--device /dev/video0" in check.fix


def test_a_jetson_release_file_gives_the_l4t_release_and_jetpack_major(tmp_path):
    machine = _machine(tmp_path)
    machine.tegra_release.write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    )
    machine.device_tree_model.write_text("NVIDIA Jetson Orin Nano Developer Kit\x00")
    check = doctor.check_jetson(machine)
    assert "L4T R36.4.3 (JetPack 6)" in check.detail
    assert "Orin Nano" in check.detail
    assert "r36" in check.detail  # the container base the host needs


def test_an_unknown_release_line_is_not_parsed_as_a_version():
    assert doctor.parse_l4t_release("garbage") is None
    assert doctor.parse_l4t_release("# R35 (release), REVISION: 4.1, GCID: 1") == "35.4.1"


def test_a_jetson_without_nvidia_smi_still_counts_its_integrated_gpu(tmp_path, monkeypatch):
    machine = _machine(tmp_path)
    machine.tegra_release.write_text("# R36 (release), REVISION: 4.3\n")
    monkeypatch.setattr(doctor, "_run", lambda cmd: None)  # no nvidia-smi, as on many Jetson images
    assert doctor.check_gpu(machine).ok
    monkeypatch.undo()
    machine.tegra_release.unlink()
    monkeypatch.setattr(doctor, "_run", lambda cmd: None)
    assert not doctor.check_gpu(machine).ok


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed here")
def test_the_installed_mediapipe_bundles_the_face_models_the_tracker_loads(tmp_path):
    check = doctor.check_mediapipe_models(_machine(tmp_path))
    assert check.ok, check.detail


def test_onnxruntime_reports_its_providers_including_the_cpu_one(tmp_path):
    check = doctor.check_onnxruntime(_machine(tmp_path))
    assert check.ok
    assert "CPUExecutionProvider" in check.detail


def test_opencv_build_flags_are_read_from_the_build_information():
    info = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   NO\n"
    assert doctor._opencv_build_flag(info, "FFMPEG")
    assert not doctor._opencv_build_flag(info, "GStreamer")
    assert doctor._opencv_build_flag("    GStreamer:                   1.22.0\n", "GStreamer")


def test_the_gpu_capability_lists_exactly_the_failed_checks_it_needs():
    checks = [
        Check("onnxruntime", True, "ok"),
        Check("opencv", True, "ok"),
        Check("mediapipe models", True, "ok"),
        Check("gpu", True, "H100"),
        Check("cuda driver", True, "12.4"),
        Check("tensorrt", False, "not installed", "pip install 'mestream[gpu]'"),
        Check("pycuda", False, "not installed", "pip install 'mestream[gpu]'"),
        Check("jetson", True, "not a Jetson", info=True),
    ]
    gaps = doctor.capabilities(checks)
    assert gaps["cpu"] == []
    assert gaps["gpu"] == ["tensorrt", "pycuda"]
    doctor.require(checks, ["cpu"])  # nothing missing: no error
    with pytest.raises(MestreamError) as err:
        doctor.require(checks, ["gpu"])
    message = str(err.value)
    assert "\n" not in message
    assert "tensorrt" in message and "pycuda" in message and "mestream[gpu]" in message


def test_every_probe_runs_on_this_machine_and_the_report_names_them_all():
    checks = doctor.run_checks(Machine())
    names = {c.name for c in checks}
    assert set().union(*doctor.CAPABILITIES.values()) <= names
    report = doctor.format_report(checks)
    for c in checks:
        assert c.name in report
    for c in checks:
        if not c.ok:
            assert c.fix, f"{c.name} is missing but says nothing about how to fix it"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
def test_requiring_the_gpu_pipeline_without_a_gpu_fails_with_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "doctor", "--require", "gpu"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot run --require gpu" in lines[0]
    assert "Traceback" not in done.stderr


def test_json_output_parses_and_doctor_never_imports_torch_or_mediapipe():
    code = (
        "import sys, io, contextlib, json\n"
        "from edge import cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = cli.main(['doctor', '--json'])\n"
        "doc = json.loads(buf.getvalue())\n"
        "print(json.dumps({'rc': rc, 'names': [c['name'] for c in doc['checks']],\n"
        "  'heavy': [m for m in ('torch', 'mediapipe') if m in sys.modules]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0
    assert "tensorrt" in result["names"] and "cameras" in result["names"]
    assert result["heavy"] == []
