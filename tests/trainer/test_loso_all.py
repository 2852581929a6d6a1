"""benchmarks/loso_all.py: --resume keeps finished runs and still writes the seed summary."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch comes with the [train] extra")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "loso_all.py"


def _loso_all():
    spec = importlib.util.spec_from_file_location("loso_all", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(uf1):
    part = {"uf1": uf1, "uar": uf1 + 0.01, "acc": 0.7, "n": 10}
    return {"parts": {"full": part, "casme2": part, "smic": part, "samm": part}, "selection": "fixed recipe",
            "time": {"seconds": 60.0}}


def test_resume_keeps_existing_reports_and_summarises_mean_and_spread_over_seeds(tmp_path):
    for seed, uf1 in ((0, 0.70), (1, 0.74)):
        run = tmp_path / f"ststnet-s{seed}"
        run.mkdir()
        (run / "report.json").write_text(json.dumps(_report(uf1)))
    # --data does not exist: nothing may be trained, only the kept reports summarised
    assert _loso_all().main(["--data", str(tmp_path / "absent"), "--labels", str(tmp_path / "absent.csv"),
                             "--out", str(tmp_path), "--families", "ststnet", "--seeds", "0", "1", "--resume"]) == 0
    full = json.loads((tmp_path / "summary.json").read_text())["families"]["ststnet"]["parts"]["full"]["uf1"]
    assert full["per_seed"] == [0.70, 0.74]
    assert full["mean"] == pytest.approx(0.72) and full["std"] == pytest.approx(0.02)
    assert "0.7200 ± 0.0200" in (tmp_path / "summary.md").read_text()
