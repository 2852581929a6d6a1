"""CASME II: the real coding sheets (both versions, chosen explicitly) over frame trees built from a real clip."""

import inspect

import pytest
from frame_trees import read_frames, write_frames

from engines.errors import MestreamError
from trainer.data.casme2 import load_casme2, read_casme2_sheet
from trainer.data.clips import LOADERS, get_loader

SHEET_2014 = "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx"
SHEET_2019 = "annotations/MouathAb_AnalyseMiE/CASME2-coding-20190701.xlsx"
VIDEO = "videos/casme2_sub01_EP02_01f.avi"


@pytest.fixture(scope="module")
def face_frames(assets):
    """The real CASME II clip's 44 frames, halved in size to keep the trees small."""
    frames = read_frames(assets / VIDEO, (320, 240))
    assert len(frames) == 44
    return frames


@pytest.fixture
def tree(tmp_path, face_frames):
    """ROOT/sub01/EP02_01f/img43.jpg .. img86.jpg, as CASME2_RAW_selected lays it out."""
    write_frames(tmp_path / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(43, 87)], face_frames)
    return tmp_path


def test_a_clip_is_read_from_its_folder_with_the_sheets_frames_as_positions(assets, tree):
    result = load_casme2(tree, assets / SHEET_2019, version="2019-07-01")
    (clip,) = result.clips
    assert (clip.dataset, clip.subject, clip.name, clip.uid) == ("casme2", "sub01", "EP02_01f", "sub01_EP02_01f")
    assert len(clip.frames) == 44 and clip.numbers[0] == 43
    assert (clip.onset, clip.apex, clip.offset) == (4, 17, 44)
    assert clip.frame(clip.onset).name == "img46.jpg" and clip.frame(clip.apex).name == "img59.jpg"
    assert clip.numbers[clip.offset - 1] == 86
    assert clip.action_units == ("AU12",) and clip.action_units_raw == "12"
    assert (clip.emotion, clip.class_map, clip.label) == ("happiness", "casme2-5class", 0)
    assert clip.apex_source == "sheet"


def test_every_other_sheet_row_is_skipped_and_counted_with_its_reason(assets, tree):
    result = load_casme2(tree, assets / SHEET_2019, version="2019-07-01")
    assert len(result.clips) + len(result.skipped) == 255
    reasons = [why for _, why in result.skipped]
    not_in_map = [why for why in reasons if "is not a class of casme2-5class" in why]
    no_folder = [why for why in reasons if "does not exist" in why]
    assert len(not_in_map) == 6  # 2019 sheet: sadness 4 + fear 2
    assert len(no_folder) == 255 - 1 - 6
    assert any(name == "sub02_EP01_11f" for name, _ in result.skipped)


def test_the_megc2019_mapping_makes_happiness_positive(assets, tree):
    (clip,) = load_casme2(tree, assets / SHEET_2014, version="2014-05-08", class_map_name="megc2019-3class").clips
    assert (clip.class_map, clip.label) == ("megc2019-3class", 1)


def test_the_sheet_version_is_an_explicit_choice_and_a_mismatch_is_refused(assets, tree):
    with pytest.raises(MestreamError, match="lacks column.*Objective Classes"):
        load_casme2(tree, assets / SHEET_2014, version="2019-07-01")
    with pytest.raises(MestreamError, match="has column 'Objective Classes'.*pass version 2019-07-01"):
        load_casme2(tree, assets / SHEET_2019, version="2014-05-08")
    with pytest.raises(MestreamError, match="version '2019' is unknown; expected one of 2014-05-08, 2019-07-01"):
        load_casme2(tree, assets / SHEET_2019, version="2019")
    assert inspect.signature(load_casme2).parameters["version"].default is inspect.Parameter.empty  # no default


def test_the_two_versions_differ_in_action_units_and_emotions_as_documented(assets):
    old, _ = read_casme2_sheet(assets / SHEET_2014, "2014-05-08")
    new, _ = read_casme2_sheet(assets / SHEET_2019, "2019-07-01")
    assert [e.uid for e in old] == [e.uid for e in new]
    au_changed = [a.uid for a, b in zip(old, new) if a.action_units_raw != b.action_units_raw]
    emotion_changed = [a.uid for a, b in zip(old, new) if a.emotion != b.emotion]
    assert len(au_changed) == 57 and len(emotion_changed) == 3
    first = dict((e.uid, e.action_units_raw) for e in old)["sub01_EP19_05f"], \
        dict((e.uid, e.action_units_raw) for e in new)["sub01_EP19_05f"]
    assert first == ("4+L10", "4+7+L10")


def test_a_folder_missing_a_frame_skips_the_clip_and_names_the_frame(assets, tree):
    (tree / "sub01" / "EP02_01f" / "img50.jpg").unlink()
    result = load_casme2(tree, assets / SHEET_2019, version="2019-07-01")
    assert result.clips == []
    (why,) = [why for name, why in result.skipped if name == "sub01_EP02_01f"]
    assert "missing frames" in why and "no frame 50" in why and "46..86" in why


def test_an_onset_after_the_offset_is_skipped_and_counted(assets, tree, tmp_path):
    import openpyxl

    book = openpyxl.load_workbook(assets / SHEET_2019)
    book.worksheets[0]["D2"] = 90  # EP02_01f's OnsetFrame, after its offset 86
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    result = load_casme2(tree, edited, version="2019-07-01")
    assert result.clips == []
    assert ("sub01_EP02_01f", "line 2: onset 90 is after offset 86") in result.skipped


def test_the_cropped_release_naming_reg_img_is_read_too(assets, tmp_path, face_frames):
    write_frames(tmp_path / "sub01" / "EP02_01f", [f"reg_img{n}.jpg" for n in range(46, 87)], face_frames)
    (clip,) = load_casme2(tmp_path, assets / SHEET_2014, version="2014-05-08").clips
    assert (clip.onset, clip.apex, clip.offset) == (1, 14, 41)
    assert clip.frame(clip.apex).name == "reg_img59.jpg"


def test_the_clip_without_an_apex_in_the_sheet_gets_the_middle_frame_and_a_warning(assets, tmp_path, face_frames):
    write_frames(tmp_path / "sub04" / "EP12_01f", [f"img{n}.jpg" for n in range(261, 322)], face_frames)
    result = load_casme2(tmp_path, assets / SHEET_2014, version="2014-05-08")
    (clip,) = result.clips
    assert clip.numbers[clip.apex - 1] == 291 and "middle frame" in clip.apex_source
    assert ("sub04_EP12_01f", "line 31: apex '/' is not a frame number; middle frame 291 used") in result.warnings


def test_a_frames_root_that_is_not_a_folder_and_an_unknown_class_map_are_user_errors(assets, tmp_path):
    with pytest.raises(MestreamError, match="is not a folder; expected the folder holding sub01/EP02_01f"):
        load_casme2(tmp_path / "nope", assets / SHEET_2019, version="2019-07-01")
    with pytest.raises(MestreamError, match="class map 'samm-5class' is not defined for casme2; expected one of"):
        load_casme2(tmp_path, assets / SHEET_2019, version="2019-07-01", class_map_name="samm-5class")


def test_every_registered_loader_takes_a_frames_root_and_a_sheet():
    assert set(LOADERS) == {"casme2", "samm", "smic", "mmew", "casme3", "megc2019-frames"}
    for name in LOADERS:
        loader = get_loader(name)
        assert loader.__name__ == f"load_{name.replace('-', '_')}"
        assert list(inspect.signature(loader).parameters)[:2] == ["root", "sheet"]
    with pytest.raises(MestreamError, match="unknown dataset 'casme'; expected one of casme2, samm"):
        get_loader("casme")


def test_casme2_trains_with_loso_from_its_raw_frames_and_sheet(assets, tmp_path):
    """mestream train --dataset casme2: loader -> mestream prep (edge tracker, TV-L1 form) -> LOSO report."""
    import json

    pytest.importorskip("torch", reason="torch comes with the [train] extra")
    pytest.importorskip("mediapipe", reason="prep tracks faces with MediaPipe")
    from edge.cli import main

    frames = read_frames(assets / VIDEO, None)
    root = tmp_path / "CASME2_RAW_selected"
    write_frames(root / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(46, 87)], frames)  # happiness
    write_frames(root / "sub02" / "EP01_11f", [f"img{n}.jpg" for n in range(46, 97)], frames)  # repression
    out = tmp_path / "runs" / "casme2"
    code = main(["-q", "train", "--model", "ststnet", "--dataset", "casme2", "--data", str(root),
                 "--labels", str(assets / SHEET_2019), "--loader-option", "version=2019-07-01",
                 "--out", str(out), "--epochs", "1"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "casme2" and report["classes"] == ["happiness", "surprise", "disgust", "repression", "others"]
    assert report["counts"]["samples"] == 2 and report["counts"]["subjects"] == 2
    assert report["counts"]["per_class"]["happiness"] == 1 and report["counts"]["per_class"]["repression"] == 1
    assert report["skipped"]["count"] == 253 and any("sub01_EP03_02" in line for line in report["skipped"]["files"])
    assert sorted(p.name for p in (tmp_path / "runs" / ".mestream-prep" / "casme2").glob("*/*.npz")) == \
        ["sub01_EP02_01f.npz", "sub02_EP01_11f.npz"]


def test_train_refuses_a_raw_dataset_without_its_required_loader_option():
    from trainer.data.clips import parse_loader_options

    with pytest.raises(MestreamError, match="casme2 needs --loader-option version=VALUE"):
        parse_loader_options("casme2", [])
    with pytest.raises(MestreamError, match="loader option 'layout=hs' is not KEY=VALUE with KEY one of version"):
        parse_loader_options("casme2", ["layout=hs"])
    assert parse_loader_options("smic", ["layout=hs-e", "apex=max-flow"]) == {"layout": "hs-e", "apex": "max-flow"}
