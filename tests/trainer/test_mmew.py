"""MMEW: HTNet's CSV exports of the MMEW sheet over emotion/clip frame trees from a real face clip."""

from pathlib import Path

import pytest
from frame_trees import write_frames

from engines.errors import MestreamError
from trainer.data.mmew import load_mmew, read_mmew_sheet

SHEET = "annotations/wangzhifengharrison_HTNet/MMEW_Micro_Exp_delete_others.csv"
NO_ANGER = "annotations/wangzhifengharrison_HTNet/MMEW_Micro_Exp_delete_others_anger.csv"


def write_clip(folder: Path, numbers, frames) -> None:
    write_frames(folder, [f"{number}.jpg" for number in numbers], frames)


@pytest.fixture
def tree(tmp_path, face_frames):
    """ROOT/happiness/S01-01-001/1.jpg .. 31.jpg (onset 1, apex 15, offset 31 in the sheet)."""
    write_clip(tmp_path / "happiness" / "S01-01-001", range(1, 32), face_frames)
    return tmp_path


def test_a_clip_is_read_from_its_emotion_folder(assets, tree):
    result = load_mmew(tree, assets / SHEET)
    (clip,) = result.clips
    assert (clip.subject, clip.name, clip.emotion) == ("S01", "S01-01-001", "happiness")
    assert (clip.onset, clip.apex, clip.offset) == (1, 15, 31) and clip.frame(clip.apex).name == "15.jpg"
    assert clip.action_units == ("AU6", "AU12") and clip.action_units_raw == "6+12"
    assert (clip.class_map, clip.label) == ("mmew-6class", 0)
    assert len(result.clips) + len(result.skipped) == 234


def test_labels_follow_htnets_label_column_minus_one(assets):
    import csv

    from trainer.data.clips import class_map

    cmap = class_map("mmew", "mmew-6class")
    with open(assets / SHEET, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(cmap.label_of(r["Estimated Emotion"]) == int(r["label"]) - 1 for r in rows)
    entries, problems = read_mmew_sheet(assets / SHEET)
    assert len(entries) == 234 and problems.skipped == []


def test_anger_is_skipped_and_counted_under_the_five_class_map(assets, tmp_path, face_frames):
    sheet = read_mmew_sheet(assets / SHEET)[0]
    angry = next(e for e in sheet if e.emotion == "anger")
    write_clip(tmp_path / angry.folder, range(1, angry.offset + 1), face_frames)
    result = load_mmew(tmp_path, assets / SHEET, class_map_name="mmew-5class")
    assert (angry.uid, f"line {angry.line}: emotion 'anger' is not a class of mmew-5class "
            "(happiness, surprise, sadness, disgust, fear)") in result.skipped
    assert len(load_mmew(tmp_path, assets / NO_ANGER, class_map_name="mmew-5class").clips) == 0


def test_a_clip_folder_short_of_its_offset_frame_is_skipped_with_the_frame_named(assets, tmp_path, face_frames):
    write_clip(tmp_path / "happiness" / "S01-01-001", range(1, 25), face_frames)
    result = load_mmew(tmp_path, assets / SHEET)
    why = dict(result.skipped)["S01_S01-01-001"]
    assert "no frame 25 and 6 more" in why and "holds 1..24" in why


def test_the_casme2_sheet_is_not_taken_for_an_mmew_sheet(assets, tmp_path):
    with pytest.raises(MestreamError, match="MMEW annotation sheet"):
        load_mmew(tmp_path, assets / "annotations/davidnvq_me_recognition/casme_apex.csv")
