"""SMIC-HS: the real SMIC-E sheet (no apex: estimated, and said so) over frame trees from a real face clip."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.data.smic import load_smic, read_smic_sheet

ORIGINAL = "annotations/davidnvq_me_recognition/SMIC-HS-E_annotation_orig.xlsx"
EDITED = "annotations/davidnvq_me_recognition/SMIC-HS-E_annotation.xlsx"
ONSET, OFFSET = 559740, 559775  # s1_ne_01 in the sheet (absolute frame numbers)


def write_clip(folder: Path, numbers, images, suffix: str) -> None:
    folder.mkdir(parents=True)
    for number, image in zip(numbers, images):
        cv2.imwrite(str(folder / f"image{number}{suffix}"), image)


def test_a_clip_is_read_from_the_smic_hs_layout_with_the_middle_frame_as_apex(assets, tmp_path, face_frames):
    numbers = range(ONSET, OFFSET + 1)
    write_clip(tmp_path / "s01" / "micro" / "negative" / "s1_ne_01", numbers, face_frames, ".bmp")
    result = load_smic(tmp_path, assets / ORIGINAL, layout="hs", apex="middle")
    (clip,) = result.clips
    assert (clip.subject, clip.name, clip.emotion, clip.label, clip.class_map) == \
        ("s01", "s1_ne_01", "negative", 0, "smic-3class")
    assert (clip.onset, clip.offset) == (1, 36) and clip.apex == (1 + 36) // 2
    assert "SMIC has no apex annotation" in clip.apex_source and "middle frame" in clip.apex_source
    assert ("s01_s1_ne_01", f"apex frame {ONSET + 17} estimated: {clip.apex_source}") in result.warnings
    assert clip.action_units == () and clip.action_units_raw == ""
    assert len(result.clips) + len(result.skipped) == 162


def test_the_max_flow_estimate_picks_the_frame_that_moved_most_from_the_onset(assets, tmp_path, face_frames):
    still = face_frames[0]
    moved = np.roll(still, 6, axis=1)  # the whole face 6 px to the right
    half = np.roll(still, 2, axis=1)
    images = [still] * 36
    images[20], images[19], images[21] = moved, half, half
    write_clip(tmp_path / "s01" / "micro" / "negative" / "s1_ne_01", range(ONSET, OFFSET + 1), images, ".bmp")
    (clip,) = load_smic(tmp_path, assets / ORIGINAL, layout="hs", apex="max-flow").clips
    assert clip.apex == 21
    assert clip.apex_source.startswith("max-flow frame") and "SMIC has no apex annotation" in clip.apex_source


def test_the_smic_e_layout_keeps_the_frames_around_the_expression(assets, tmp_path, face_frames):
    numbers = range(ONSET - 10, OFFSET + 6)
    write_clip(tmp_path / "s01" / "s1_ne_01", numbers, [face_frames[i % 44] for i in range(len(numbers))], ".jpg")
    (clip,) = load_smic(tmp_path, assets / ORIGINAL, layout="hs-e").clips
    assert (clip.onset, clip.offset, len(clip.frames)) == (11, 46, 51)
    assert clip.frame(clip.onset).name == f"image{ONSET}.jpg"


def test_frames_numbered_otherwise_than_the_sheet_are_skipped_with_what_the_folder_holds(assets, tmp_path, face_frames):
    write_clip(tmp_path / "s01" / "micro" / "negative" / "s1_ne_01", range(1, 37), face_frames, ".bmp")
    result = load_smic(tmp_path, assets / ORIGINAL)
    why = dict(result.skipped)["s01_s1_ne_01"]
    assert f"no frame {ONSET}" in why and "holds 1..36" in why


def test_the_edited_sheet_drops_five_clips_that_the_original_has(assets):
    original, _ = read_smic_sheet(assets / ORIGINAL)
    edited, _ = read_smic_sheet(assets / EDITED)
    assert (len(original), len(edited)) == (162, 157)
    assert {e.uid for e in edited} < {e.uid for e in original}


def test_unknown_layouts_apex_methods_and_worksheets_are_user_errors(assets, tmp_path):
    with pytest.raises(MestreamError, match="layout 'smic-e' is unknown; expected one of hs, hs-e"):
        load_smic(tmp_path, assets / ORIGINAL, layout="smic-e")
    with pytest.raises(MestreamError, match="apex method 'peak' is unknown; expected one of middle, max-flow"):
        load_smic(tmp_path, assets / ORIGINAL, apex="peak")
    with pytest.raises(MestreamError, match="no worksheet 'NIR'"):
        load_smic(tmp_path, assets / ORIGINAL, sheet_name="NIR")
