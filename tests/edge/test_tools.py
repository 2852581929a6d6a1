"""edge/tools: the runtime never imports the tools or their extra, and a tool job without the extra says what to install."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A finder first on sys.meta_path that refuses the named top-level packages and notes who asked.
BLOCKER = """
import sys, traceback
BLOCKED = set(sys.argv[1].split(","))
asked = []
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.split(".")[0] in BLOCKED or any(name.startswith(b + ".") for b in BLOCKED):
            asked.append(name + " <- " + "".join(traceback.format_stack(limit=12)[:-1]))
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""

RUNTIME = BLOCKER + """
import importlib, pkgutil
import edge
from edge.cli import build_parser
build_parser()  # imports every job's module, the tool jobs' and the trainer's included
failed = []
def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name == "edge.tools":  # the one subpackage the runtime must not need
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
            continue
        if info.ispkg:
            walk(module)
walk(edge)
print("FAILED", failed)
print("ASKED", asked)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED or m.startswith("edge.tools"))
print("LOADED", loaded)
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_every_runtime_module_and_the_cli_import_without_matplotlib_tqdm_or_the_tools():
    run = _python(RUNTIME, "matplotlib,tqdm,edge.tools,mediapipe,torch")
    assert run.returncode == 0, run.stderr
    lines = {line.split(" ", 1)[0]: line for line in run.stdout.splitlines()}
    assert lines["FAILED"] == "FAILED []", run.stdout
    assert lines["ASKED"] == "ASKED []", run.stdout
    assert lines["LOADED"] == "LOADED []", run.stdout


def test_the_blocker_catches_a_module_that_imports_a_tool_at_import_time():
    code = BLOCKER + "import edge.tools.plots\nprint(len(asked))"
    run = _python(code, "edge.tools")
    assert run.returncode != 0 and "blocked by the test" in run.stderr


def test_a_tool_job_without_the_tools_extra_says_in_one_line_which_extra_to_install(tmp_path):
    code = BLOCKER + "from edge.cli import main\nsys.exit(main(sys.argv[2:]))"
    jobs = [
        ["bench", "--source", str(tmp_path / "none.avi")],
        ["synth", "--face", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "s.mp4"), "--truth", str(tmp_path / "s.csv")],
        ["spot-eval", "--source", str(tmp_path / "none.mp4")],
    ]
    (tmp_path / "none.mp4").write_bytes(b"")  # spot-eval checks that the source exists before anything else
    for job in jobs:
        run = _python(code, "matplotlib", *job)
        assert run.returncode == 2, (job, run.stderr)
        err = [line for line in run.stderr.splitlines() if line.strip()]
        assert err == [f"mestream {job[0]}: error: matplotlib is not installed; it comes with the [tools] extra: "
                       "pip install 'mestream[tools]'"], (job, run.stderr)


def test_bench_flow_draws_nothing_and_so_runs_without_the_tools_extra(tmp_path):
    code = BLOCKER + "from edge.cli import main\nsys.exit(main(sys.argv[2:]))"
    run = _python(code, "matplotlib,tqdm", "bench-flow", "--assets", str(tmp_path))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith(f"mestream bench-flow: error: no Middlebury data under {tmp_path}/flow")
