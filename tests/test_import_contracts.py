"""The allowed import directions (pyproject.toml [tool.importlinter]) hold, and breaking one fails lint-imports."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "engines", "trainer")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` (import-linter, the [dev] extra) run by this interpreter in `root`."""
    cmd = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def _python_files_only(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or (not n.endswith(".py") and not Path(folder, n).is_dir())}


def test_the_import_contracts_hold_for_the_tree():
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 kept, 0 broken" in run.stdout


def test_a_forbidden_import_breaks_its_contract_and_lint_imports_names_it(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_python_files_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    breaches = {
        "edge/stages/breach.py": "import torch\n",
        "engines/breach.py": "from edge.messages import Message\n",
        "trainer/breach.py": "from edge.supervisor import Supervisor\n",
        "edge/perception/breach.py": "import matplotlib\n",
    }
    for rel, line in breaches.items():
        (tmp_path / rel).write_text(line)
    run = _lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "0 kept, 4 broken" in run.stdout, run.stdout
    for importer, imported in [("edge.stages.breach", "torch"), ("engines.breach", "edge.messages"),
                               ("trainer.breach", "edge.supervisor"), ("edge.perception.breach", "matplotlib")]:
        assert f"{importer} -> {imported}" in run.stdout, run.stdout
