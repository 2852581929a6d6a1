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


def test_a_clip_row_carries_the_apex_error_of_the_event_that_overlaps_the_truth_most():
    from edge.spotting.metrics import Interval

    sr = _module()
    truth = Interval(100, 160, "micro", 130)
    events = [Interval(10, 20, "micro", 15), Interval(104, 158, "micro", 140)]
    row = sr.score_clip(events, truth, fps=200.0)
    assert row["apex_ms"] == 50.0  # 10 frames late at 200 fps; the far event is not the one measured
    assert sr.score_clip([], truth, fps=200.0)["apex_ms"] is None
    rows = [{**row, "subject": "a"}, {**sr.score_clip([Interval(100, 160, "micro", 126)], truth, 200.0), "subject": "a"}]
    pooled = sr.summary(rows)
    assert pooled["apex_ms"] == 15.0 and pooled["apex_abs_ms"] == 35.0  # median of +50 and -20 ms


def test_the_unseen_set_is_every_clip_of_subjects_outside_the_split_in_another_frames_folder(assets, tmp_path):
    # a held-back subject laid out as casme2_cropped is (sub01 is in neither TUNE nor EVAL); the frames are a shared
    # subject's, linked under the sheet's frame numbers: only the folder layout and the sheet matter here
    sr = _module()
    ours = assets / "casme2_cropped" / "CASME2_Cropped"
    source = sorted((ours / "sub02" / "EP09_06f").glob("reg_img*.jpg"))
    clip = tmp_path / "CASME2_Cropped" / "sub01" / "EP02_01f"  # onset 46, offset 86 in the 2014-05-08 sheet
    clip.mkdir(parents=True)
    for i, n in enumerate(range(46, 87)):
        (clip / f"reg_img{n}.jpg").symlink_to(source[i])
    (tmp_path / "CASME2_Cropped" / "sub02").symlink_to(ours / "sub02")  # a tuning subject: never unseen
    clips = sr.load_clips(assets, "unseen", frames=tmp_path / "CASME2_Cropped")
    assert [(c.subject, c.name, len(c.frames)) for c in clips] == [("sub01", "EP02_01f", 41)]
    assert (clips[0].onset, clips[0].apex, clips[0].offset) == (1, 14, 41)  # positions in its frames (apex 59)
