"""SAMM: the real FACS-codes sheet (13 lines of notes, two apex typos) over frame trees from a real face clip."""

import pytest
from frame_trees import write_frames

from engines.errors import MestreamError
from trainer.data.samm import load_samm, read_samm_sheet

ORIGINAL = "annotations/MouathAb_AnalyseMiE/SAMM_Micro_FACS_Codes_v2.xlsx"
CORRECTED = "annotations/davidnvq_me_recognition/SAMM_Micro_FACS_Codes_v2.xlsx"


@pytest.fixture
def tree(tmp_path, face_frames):
    """ROOT/006/006_1_2/006_05560.jpg .. 006_05635.jpg and ROOT/028/028_4_1/028_01071.jpg .. 028_01134.jpg."""
    write_frames(tmp_path / "006" / "006_1_2", [f"006_{n:05d}.jpg" for n in range(5560, 5636)], face_frames)
    write_frames(tmp_path / "028" / "028_4_1", [f"028_{n:05d}.jpg" for n in range(1071, 1135)], face_frames)
    return tmp_path


def test_a_clip_is_found_by_the_absolute_frame_numbers_its_files_carry(assets, tree):
    result = load_samm(tree, assets / ORIGINAL)
    clip = next(c for c in result.clips if c.name == "006_1_2")
    assert (clip.subject, clip.uid) == ("006", "006_006_1_2")
    assert (clip.onset, clip.apex, clip.offset) == (3, 29, 73)
    assert clip.frame(clip.apex).name == "006_05588.jpg"
    assert clip.action_units == ("AU4", "AU7") and clip.action_units_raw == "4+7"
    assert (clip.emotion, clip.class_map, clip.label) == ("Anger", "samm-5class", 2)


def test_the_two_known_apex_typos_are_corrected_with_a_warning_naming_the_clips(assets, tree):
    result = load_samm(tree, assets / ORIGINAL)
    warned = {name: message for name, message in result.warnings}
    assert set(warned) == {"028_028_4_1", "032_032_3_1"}
    assert "apex 1143 is outside onset 1071 .. offset 1134" in warned["028_028_4_1"] and "1113" in warned["028_028_4_1"]
    assert "apex 1930" in warned["032_032_3_1"] and "4930" in warned["032_032_3_1"]
    clip = next(c for c in result.clips if c.name == "028_4_1")
    assert clip.numbers[clip.apex - 1] == 1113


def test_the_corrected_copy_of_the_sheet_needs_no_correction_and_agrees(assets):
    original, fixed = read_samm_sheet(assets / ORIGINAL), read_samm_sheet(assets / CORRECTED)
    assert fixed[1].warnings == []
    assert [(e.uid, e.onset, e.apex, e.offset) for e in original[0]] == [(e.uid, e.onset, e.apex, e.offset) for e in fixed[0]]
    assert len(original[0]) == 159


def test_every_row_is_a_clip_or_a_named_skip(assets, tree):
    result = load_samm(tree, assets / ORIGINAL)
    assert len(result.clips) + len(result.skipped) == 159
    not_in_map = [name for name, why in result.skipped if "is not a class of samm-5class" in why]
    assert len(not_in_map) == 9 + 8 + 6  # disgust, fear, sadness are outside the 5 classes


def test_an_unknown_apex_outside_its_interval_is_skipped_not_guessed(assets, tree, tmp_path):
    import openpyxl

    book = openpyxl.load_workbook(assets / ORIGINAL)
    book.worksheets[0]["E15"] = 5700  # 006_1_2's apex, after its offset 5632
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    result = load_samm(tree, edited)
    assert ("006_006_1_2", "line 15: apex 5700 is outside onset 5562 .. offset 5632") in result.skipped
    assert all(c.name != "006_1_2" for c in result.clips)


def test_a_missing_clip_folder_is_named_and_counted(assets, tree):
    result = load_samm(tree, assets / ORIGINAL)
    why = dict(result.skipped)["006_006_1_3"]
    assert "clip folder" in why and "006/006_1_3 does not exist" in why


def test_the_megc2019_mapping_groups_anger_contempt_disgust_fear_sadness_as_negative(assets):
    entries, _ = read_samm_sheet(assets / ORIGINAL)
    from trainer.data.clips import class_map

    cmap = class_map("samm", "megc2019-3class")
    kept = [cmap.by_emotion.get(e.emotion.lower()) for e in entries]
    assert [kept.count(k) for k in (0, 1, 2, None)] == [92, 26, 15, 26]


def test_a_sheet_that_is_not_the_samm_sheet_is_refused_by_its_columns(assets, tmp_path):
    with pytest.raises(MestreamError, match="SAMM FACS codes sheet .* lacks column.*Onset Frame"):
        load_samm(tmp_path, assets / "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx")
