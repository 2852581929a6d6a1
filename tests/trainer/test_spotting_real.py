"""benchmarks/spotting_real.py: the pooled recall's interval over resampled subjects."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "spotting_real.py"


def _module():
    spec = importlib.util.spec_from_file_location("spotting_real", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_recall_interval_spans_the_subjects_recalls_and_is_a_point_when_all_agree():
    sr = _module()
    rows = [{"subject": "a", "hit": True}] * 4 + [{"subject": "b", "hit": True}, {"subject": "b", "hit": False}]
    low, high = sr.recall_interval(rows, draws=500)
    assert 0.5 <= low < high <= 1.0  # b alone recalls 0.5, a alone 1.0
    assert sr.recall_interval(rows, draws=500) == [low, high]
    assert sr.recall_interval([{"subject": s, "hit": True} for s in "abc"], draws=50) == [1.0, 1.0]
