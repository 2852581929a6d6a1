"""benchmarks/spotter_real_train.py: the learned spotter trains on the TUNE subjects' test videos only."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "spotter_real_train.py"


def _module():
    spec = importlib.util.spec_from_file_location("spotter_real_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_test_video_not_tracked_yet_is_a_one_line_error_naming_the_command_that_makes_it(assets, tmp_path):
    from edge.spotting.learned import FeatureSpec

    with pytest.raises(SystemExit) as exc:
        _module().tune_videos(assets, tmp_path, "still", [30.0], FeatureSpec())
    message = str(exc.value)
    assert "\n" not in message and str(tmp_path / "cache") in message and "_still_30_0.npz does not exist" in message
    assert f"spotting_real.py --work {tmp_path} --set tune --protocol still --fps 30" in message
