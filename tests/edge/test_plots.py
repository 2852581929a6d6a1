"""edge/tools/plots.py: per-subject bars as a PNG next to the report, written atomically, with one-line errors."""

import cv2
import numpy as np
import pytest

from edge.tools.plots import dataset_colours, per_subject_bars
from engines.errors import MestreamError


def _rows():
    return [{"subject": f"sub{i:02d}", "dataset": "casme2" if i < 4 else "samm", "fold": i, "n": 5, "correct": i % 6}
            for i in range(8)]


def test_per_subject_bars_write_a_png_with_one_colour_per_dataset(tmp_path):
    path = tmp_path / "per_subject.png"
    per_subject_bars(path, _rows(), "ststnet LOSO seed 0")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600
    pixels = image.reshape(-1, 3).astype(int)

    def has(rgb):  # matplotlib's tab:blue / tab:orange, as BGR
        return bool((np.abs(pixels - rgb[::-1]).sum(axis=1) < 12).sum() > 500)

    assert has(np.array([31, 119, 180])) and has(np.array([255, 127, 14]))
    assert [p.name for p in tmp_path.iterdir()] == ["per_subject.png"]  # no temporary file left behind


def test_datasets_outside_the_composite_still_get_distinct_colours():
    colours = dataset_colours(["casme2", "mmew", "casme3", "mmew"])
    assert colours["casme2"] == "tab:blue" and len(set(colours.values())) == 3


def test_per_subject_bars_refuse_a_missing_folder_and_an_empty_run(tmp_path):
    with pytest.raises(MestreamError, match="does not exist"):
        per_subject_bars(tmp_path / "nope" / "p.png", _rows(), "t")
    with pytest.raises(MestreamError, match="no per-subject rows"):
        per_subject_bars(tmp_path / "p.png", [], "t")
