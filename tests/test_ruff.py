"""The tree is clean under `ruff check` with pyproject.toml's [tool.ruff] rules, which do catch a bad file."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ("edge", "engines", "trainer", "tests", "benchmarks")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # ruff (the [dev] extra) through this interpreter, so the suite's own environment decides the version
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_tree_is_clean_under_ruff_check():
    run = _ruff("check", "--no-cache", *TREE)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_rules_flag_an_unused_import_unsorted_imports_and_a_loop_variable_caught_late(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\nfns = [lambda: i for i in range(3)]\nprint(os.sep)\n")
    run = _ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", str(bad),
                cwd=tmp_path)
    assert run.returncode == 1
    for code in ("F401", "I001", "B023"):
        assert code in run.stdout, run.stdout
