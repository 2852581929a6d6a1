"""Container recipes: the engine is built on the device at first start, never in the image."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = sorted(p for p in DEPLOY.glob("Dockerfile.*") if not p.name.endswith(".dockerignore"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "") for line in text.splitlines() if line.strip()]


def test_there_is_one_recipe_per_target():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.jetson", "Dockerfile.x86-gpu", "Dockerfile.cpu"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_no_recipe_builds_an_engine_and_every_one_starts_through_the_start_script(path):
    instructions = _instructions(path)
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "build-engine" not in runs and "trtexec" not in runs
    assert ("ENTRYPOINT", '["/usr/local/bin/mestream-start"]') in instructions
    assert any(op == "VOLUME" and "/var/cache/mestream" in args for op, args in instructions)
    assert any(op == "USER" and args.strip() != "root" for op, args in instructions)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_everything_a_recipe_copies_exists_in_the_repository(path):
    for op, args in _instructions(path):
        if op != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = args.split()
        for src in sources:
            assert (ROOT / src).exists(), f"{path.name} copies {src}, which is not in the repository"


def test_the_jetson_recipe_says_the_l4t_major_must_match_the_host():
    text = (DEPLOY / "Dockerfile.jetson").read_text()
    assert "L4T MAJOR VERSION MUST MATCH THE HOST" in text.upper()
    assert re.search(r"^ARG L4T_TAG=r36\.", text, flags=re.M), "JetPack 6 (L4T r36, TensorRT 10) is the target"


def test_each_recipe_installs_the_extras_its_target_needs():
    cpu = " ".join(args for op, args in _instructions(DEPLOY / "Dockerfile.cpu") if op == "RUN")
    gpu = " ".join(args for op, args in _instructions(DEPLOY / "Dockerfile.x86-gpu") if op == "RUN")
    assert "[gpu]" not in cpu and "[train]" not in cpu
    assert "[gpu]" in gpu and "[train]" not in gpu


def test_jetson_requirements_match_the_project_dependencies_except_the_documented_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower(): d for d in project}
    lines = [line.split("#")[0].strip() for line in (DEPLOY / "requirements-jetson.txt").read_text().splitlines()]
    jetson = {re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower(): line for line in lines if line}
    # opencv-contrib-python is built with GStreamer by jetson/build-wheels.sh; mediapipe has no 0.10.21 aarch64 wheel.
    assert set(jetson) == set(wanted) - {"opencv-contrib-python"}
    for name, spec in jetson.items():
        if name != "mediapipe":
            assert spec.replace(" ", "") == wanted[name].split("#")[0].replace(" ", ""), name


def test_every_deploy_file_the_readme_names_exists():
    text = (DEPLOY / "README.md").read_text()
    named = set(re.findall(r"deploy/([\w./-]+\w)", text)) | set(re.findall(r"`((?:systemd|topologies|udev|bin|jetson)/[\w.-]+)`", text))
    assert named, "the README names no deploy file"
    for rel in sorted(named):
        assert (DEPLOY / rel).exists(), f"deploy/README.md names {rel}, which does not exist"
