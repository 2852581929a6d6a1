"""CAS(ME)^3 part A: the real JpgIndex v2 label sheet over recording folders built from a real face clip."""

from pathlib import Path

import pytest
from frame_trees import write_frames

from engines.errors import MestreamError
from trainer.data.casme3 import load_casme3, read_casme3_sheet

SHEET = "annotations/muse1998_MMNet/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
HTNET = "annotations/wangzhifengharrison_HTNet/cas(me)3_part_A_edited.csv"


def write_recording(folder: Path, numbers, frames) -> None:
    write_frames(folder, [f"{number}.jpg" for number in numbers], frames)


def test_a_clip_is_the_onset_to_offset_window_of_its_recording_folder(assets, tmp_path, face_frames):
    write_recording(tmp_path / "spNO.1" / "a" / "color", range(340, 371), face_frames)
    result = load_casme3(tmp_path, assets / SHEET)
    (clip,) = result.clips
    assert (clip.subject, clip.name, clip.uid) == ("spNO.1", "a_355", "spNO.1_a_355")
    assert (clip.onset, clip.apex, clip.offset, len(clip.frames)) == (1, 5, 6, 6)
    assert clip.frame(clip.apex).name == "359.jpg"
    assert (clip.emotion, clip.class_map, clip.label, clip.action_units) == ("others", "casme3-7class", 6, ("AU5",))


def test_two_expressions_of_one_recording_are_two_clips(assets, tmp_path, face_frames):
    write_recording(tmp_path / "spNO.1" / "e" / "color", range(60, 110), face_frames)
    result = load_casme3(tmp_path, assets / SHEET)
    assert sorted(c.name for c in result.clips) == ["e_62", "e_96"]
    assert len(result.clips) + len(result.skipped) == 860


def test_the_rows_with_impossible_frames_are_skipped_and_named(assets, tmp_path):
    result = load_casme3(tmp_path, assets / SHEET)
    skipped = dict(result.skipped)
    assert "apex 83 is outside onset 112 .. offset 358" in skipped["spNO.149_d_112"]
    assert "onset 3647 is after offset 2694" in skipped["spNO.216_d_3647"]
    assert "onset 1812 is after offset 0" in skipped["spNO.40_e_1812"]
    assert result.clips == [] and len(result.skipped) == 860


def test_the_three_class_map_matches_htnets_label_for_3(assets):
    import csv

    from trainer.data.clips import class_map

    three, six = class_map("casme3", "casme3-3class"), class_map("casme3", "casme3-6class")
    with open(assets / HTNET, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(three.label_of(r["emotion"]) == int(r["label_for_3"]) for r in rows)
    assert all(six.label_of(r["emotion"]) == int(r["label_for_7"]) - 1 for r in rows)


def test_htnets_edited_csv_reads_with_the_same_columns(assets):
    entries, problems = read_casme3_sheet(assets / HTNET)
    assert len(entries) == 687 and problems.skipped == []
    official = {e.uid for e in read_casme3_sheet(assets / SHEET)[0]}
    assert {e.uid for e in entries} <= official  # every HTNet clip is an official (subject, recording, onset)


def test_a_sheet_without_the_part_a_columns_is_refused(assets, tmp_path):
    with pytest.raises(MestreamError, match=r"CAS\(ME\)\^3 part A label sheet .* lacks column"):
        load_casme3(tmp_path, assets / "annotations/davidnvq_me_recognition/SAMM_Micro_FACS_Codes_v2.xlsx")
