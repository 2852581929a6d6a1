"""`mestream prep` on a small CASME II-layout frame tree built from a real CASME II clip."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.tools.track_bench import read_frames
from engines.errors import MestreamError
from trainer.prep import (
    ClipSpec,
    PrepParams,
    clip_path,
    csv_clips,
    frame_index,
    prep_clip,
    prep_clips,
    read_prepared,
    sample_frames,
)

FIRST = 46  # the coding sheet's onset of sub01/EP02_01f; the tree numbers the video's frames from here
PARAMS = PrepParams(apex_size=112, clip_frames=4)


@pytest.fixture(scope="module")
def casme_tree(assets, tmp_path_factory) -> Path:
    """ROOT/sub01/EP02_01f/img46.jpg ... img61.jpg, as CASME2_RAW_selected lays frames out."""
    root = tmp_path_factory.mktemp("casme2")
    folder = root / "sub01" / "EP02_01f"
    folder.mkdir(parents=True)
    for i, frame in enumerate(read_frames(assets / "videos" / "casme2_sub01_EP02_01f.avi", limit=16)):
        cv2.imwrite(str(folder / f"img{FIRST + i}.jpg"), frame)
    (folder / "Thumbs.db").write_bytes(b"not an image")  # stray files in a dataset folder are ignored
    return root


def _spec(root: Path, name="sub01_EP02_01f", onset=46, apex=53, offset=61) -> ClipSpec:
    return ClipSpec(name, "sub01", root / "sub01" / "EP02_01f", onset, apex, offset)


def test_frames_are_indexed_by_the_number_ending_their_file_name(casme_tree):
    index = frame_index(casme_tree / "sub01" / "EP02_01f")
    assert sorted(index) == list(range(46, 62))
    assert index[50].name == "img50.jpg"


def test_uniform_sampling_spans_onset_to_offset():
    assert sample_frames(46, 86, 5) == [46, 56, 66, 76, 86]
    assert sample_frames(10, 12, 5) == [10, 10, 11, 12, 12]
    assert sample_frames(10, 20, 0) == []


def test_one_clip_gives_the_flow_form_aligned_crops_and_a_clip(casme_tree):
    out = prep_clip(_spec(casme_tree), PARAMS)
    flow = out["flow"]
    assert flow.shape == (3, 28, 28) and flow.dtype == np.float32
    # the composite PNG form: each channel min-max scaled to 0..255, whole bytes
    assert np.allclose(flow.min(axis=(1, 2)), 0.0) and np.allclose(flow.max(axis=(1, 2)), 1.0)
    assert np.allclose(flow * 255, np.round(flow * 255), atol=1e-4)
    assert out["apex"].shape == (112, 112, 3) and out["apex"].dtype == np.uint8
    assert out["onset_crop"].shape == out["apex_crop"].shape == (128, 128)
    assert out["clip"].shape == (4, 128, 128, 3)
    assert out["frames"].tolist() == [46, 53, 61]
    # a still subject: onset and apex are warped with the same held transform, so the flow shows the
    # face, not the alignment
    np.testing.assert_array_equal(out["transforms"][0], out["transforms"][1])
    # the onset crop is the first clip frame, in RGB
    np.testing.assert_array_equal(cv2.cvtColor(out["clip"][0], cv2.COLOR_RGB2GRAY), out["onset_crop"])


def test_prep_is_cached_and_resumes_without_redoing_clips(casme_tree, tmp_path):
    good = _spec(casme_tree)
    missing = _spec(casme_tree, name="sub01_EP02_01f_late", onset=50, apex=70, offset=80)
    backwards = _spec(casme_tree, name="sub01_EP02_01f_backwards", onset=60, apex=55, offset=50)
    report = prep_clips([good, missing, backwards], tmp_path, PARAMS, progress=False)
    assert report.done == [good.name]
    assert "frame 70 is not in" in report.skipped[missing.name] and "46..61" in report.skipped[missing.name]
    assert "out of order" in report.skipped[backwards.name]
    path = clip_path(tmp_path, good)
    stamp = path.stat().st_mtime_ns
    again = prep_clips([good], tmp_path, PARAMS, progress=False)
    assert again.cached == [good.name] and again.done == []
    assert path.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "prep.json").read_text())["clip_frames"] == 4
    assert not list(tmp_path.rglob("*.tmp"))
    arrays = read_prepared(tmp_path, [good, missing])
    assert list(arrays) == [good.name] and arrays[good.name]["flow"].shape == (3, 28, 28)


def test_a_cache_made_with_other_parameters_is_refused(casme_tree, tmp_path):
    prep_clips([], tmp_path, PARAMS, progress=False)
    with pytest.raises(MestreamError, match="other parameters .*clip_frames.*new output folder"):
        prep_clips([], tmp_path, PrepParams(apex_size=112, clip_frames=6), progress=False)


def test_two_workers_make_the_same_files_as_one(casme_tree, tmp_path):
    specs = [_spec(casme_tree), _spec(casme_tree, name="sub01_EP02_01f_b", onset=48, apex=52, offset=56)]
    params = PrepParams(apex_size=64, clip_frames=0)
    one = prep_clips(specs, tmp_path / "one", params, workers=1, progress=False)
    two = prep_clips(specs, tmp_path / "two", params, workers=2, progress=False)
    assert sorted(one.done) == sorted(two.done) == sorted(s.name for s in specs)
    a, b = read_prepared(tmp_path / "one", specs), read_prepared(tmp_path / "two", specs)
    for name in a:
        for key in a[name]:
            np.testing.assert_array_equal(a[name][key], b[name][key])


def test_a_clip_csv_without_offsets_is_refused(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_text("name,subject,frames_dir,onset,apex\na,s1,x,1,2\n")
    with pytest.raises(MestreamError, match="column 'offset' missing"):
        csv_clips(path)


def test_the_prep_command_runs_from_a_clip_csv_and_reports_what_it_did(casme_tree, tmp_path, capsys):
    from edge.cli import main

    path = tmp_path / "clips.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "subject", "frames_dir", "onset", "apex", "offset"])
        w.writerow(["sub01_EP02_01f", "sub01", str(casme_tree / "sub01" / "EP02_01f"), 46, 50, 54])
        w.writerow(["ghost", "sub09", "nowhere", 1, 2, 3])
    code = main(["prep", "--clips", str(path), "--out", str(tmp_path / "out"), "--workers", "1", "--clip-frames", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped ghost: frame folder" in out and "1 prepared, 0 already cached, 1 skipped of 2 clips" in out
    assert (tmp_path / "out" / "sub01" / "sub01_EP02_01f.npz").exists()


def test_the_prep_command_reads_a_casme2_tree_through_the_official_sheet(assets, tmp_path, capsys):
    from edge.cli import main

    # sub01/EP02_01f with every frame from the sheet's onset (46) to offset (86): the loader needs them all
    folder = tmp_path / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    folder.mkdir(parents=True)
    for i, frame in enumerate(read_frames(assets / "videos" / "casme2_sub01_EP02_01f.avi", limit=41)):
        cv2.imwrite(str(folder / f"img{FIRST + i}.jpg"), frame)
    sheet = assets / "annotations" / "MouathAb_AnalyseMiE" / "CASME2-coding-20190701.xlsx"
    code = main(["prep", "--dataset", "casme2", "--frames", str(tmp_path / "CASME2_RAW_selected"), "--sheet", str(sheet),
                 "--loader-option", "version=2019-07-01", "--out", str(tmp_path / "out"), "--workers", "1",
                 "--clip-frames", "0", "--apex-size", "64", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "loader skipped" in out  # the other 254 clips have no frames here, and say so
    assert "1 prepared, 0 already cached, 0 skipped of 1 clips" in out
    with np.load(tmp_path / "out" / "sub01" / "sub01_EP02_01f.npz") as data:
        assert data["frames"].tolist() == [46, 59, 86] and data["flow"].shape == (3, 28, 28)


def test_the_prep_command_needs_frames_and_a_sheet_with_a_dataset(tmp_path, capsys):
    from edge.cli import main

    assert main(["prep", "--dataset", "casme2", "--sheet", str(tmp_path / "x.xlsx"), "--out", str(tmp_path)]) == 2
    assert "--dataset casme2 needs --frames ROOT and --sheet SHEET" in capsys.readouterr().err


def test_the_prep_record_leaves_out_the_fields_that_only_tell_several_faces_apart():
    from trainer.prep import PrepParams

    track = PrepParams().as_json()["track"]
    assert "max_faces" not in track and "forget_after" not in track and track["size"] == 128
