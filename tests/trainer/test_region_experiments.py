"""benchmarks/region_spread.py and region_landmarks_inner.py: parts by file name, per-sample boxes cut the flow."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name):
    sys.path.insert(0, str(BENCHMARKS))  # region_landmarks_inner imports region_spread by name
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_composite_file_names_tell_the_dataset_part():
    part_of = _script("region_spread").part_of
    assert [part_of(n) for n in ("sub01_EP02_01f.jpg", "s1_ne_01.jpg", "006_1_2.jpg")] == ["casme2", "smic", "samm"]


def test_spread_lines_give_the_median_centre_and_distances_per_part():
    spread = _script("region_spread")
    found = {f"sub0{i}.jpg": {k: (10.0 + i, 8.0) for k in spread.LANDMARKS} for i in range(3)}
    casme2 = spread.spread_lines(found)[0]
    assert casme2.startswith("casme2  n=  3") and "eye_left (11.0, 8.0) med 1.00" in casme2


def test_without_landmarks_a_sample_gets_ststregs_fixed_mosaic_and_with_them_its_own_boxes():
    from trainer.models.ststreg import mosaic

    per_sample_mosaic = _script("region_landmarks_inner").per_sample_mosaic
    flow = np.random.default_rng(0).random((2, 3, 28, 28), dtype=np.float32)
    boxes = [(0, 0), (0, 14), (14, 0), (14, 14)]  # the four quadrants: the mosaic is the flow itself
    out = per_sample_mosaic(flow, [None, boxes])
    np.testing.assert_array_equal(out[0], mosaic(torch.from_numpy(flow[:1]))[0].numpy())
    np.testing.assert_array_equal(out[1], flow[1])
