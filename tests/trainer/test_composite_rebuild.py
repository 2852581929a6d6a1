"""The MEGC2019 composite rebuilt from the CASME II, SAMM and SMIC sheets, checked clip by clip against the
published lists (davidnvq combined_3class_gt.csv, HTNet combined_3_class2_for_optical_flow.csv)."""

from pathlib import Path

import pytest
from frame_trees import write_frames

from engines.errors import MestreamError
from trainer.data.clips import get_loader, parse_loader_options
from trainer.data.composite import compare_with_reference, composite_rows, load_megc2019_composite, read_reference

A = "annotations/"
CASME2_2014 = A + "davidnvq_me_recognition/CASME2-coding-20140508.xlsx"
CASME2_2019 = A + "MouathAb_AnalyseMiE/CASME2-coding-20190701.xlsx"
SAMM = A + "MouathAb_AnalyseMiE/SAMM_Micro_FACS_Codes_v2.xlsx"
SMIC = A + "davidnvq_me_recognition/SMIC-HS-E_annotation_orig.xlsx"
GT = A + "davidnvq_me_recognition/combined_3class_gt.csv"
HTNET = A + "wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"


def rebuilt(assets, casme2=CASME2_2014, version="2014-05-08"):
    rows, _ = composite_rows(assets / casme2, version, assets / SAMM, assets / SMIC)
    return rows


def test_the_2014_sheets_rebuild_439_of_the_442_composite_labels(assets):
    report = compare_with_reference(rebuilt(assets), assets / GT)
    assert report.per_dataset() == {
        "casme2": {"matched": 145, "wrong_label": 0, "extra": 2, "missing": 0},
        "samm": {"matched": 133, "wrong_label": 0, "extra": 0, "missing": 0},
        "smic": {"matched": 161, "wrong_label": 1, "extra": 0, "missing": 2},
    }
    # what the challenge list leaves out or labels otherwise than the sheets, by name
    assert sorted(r.key for r in report.extra) == [("casme2", "sub04", "EP12_01f"), ("casme2", "sub05", "EP09_05f")]
    assert sorted(r.key for r in report.missing) == [("smic", "s01", "s01_ne_02"), ("smic", "s02", "s02_sur_05")]
    assert [(r.key, r.label, ref) for r, ref in report.wrong_label] == [(("smic", "s18", "s18_sur_03"), 0, 2)]


def test_htnets_list_is_the_same_442_clips_with_the_same_labels(assets):
    gt, htnet = read_reference(assets / GT), read_reference(assets / HTNET)
    assert len(gt) == len(htnet) == 442
    assert sorted((r.key, r.label) for r in gt) == sorted((r.key, r.label) for r in htnet)
    assert [sum(r.dataset == d for r in gt) for d in ("casme2", "samm", "smic")] == [145, 133, 164]


def test_the_2019_sheet_adds_three_casme2_clips_that_its_new_emotions_bring_in(assets):
    report = compare_with_reference(rebuilt(assets, CASME2_2019, "2019-07-01"), assets / GT)
    assert report.per_dataset()["casme2"] == {"matched": 145, "wrong_label": 0, "extra": 5, "missing": 0}
    assert {("casme2", "sub24", c) for c in ("EP07_01", "EP07_04f", "EP10_03")} <= {r.key for r in report.extra}


def test_a_reference_without_the_needed_columns_is_refused(assets, tmp_path):
    bad = tmp_path / "composite.csv"
    bad.write_text("dataset,name,label\ncasme2,EP02_01f,1\n")
    with pytest.raises(MestreamError, match="no sub/subject column"):
        read_reference(bad)
    bad.write_text("casme2,sub01,EP02_01f,positive\n")
    with pytest.raises(MestreamError, match="line 1: .* integer label"):
        read_reference(bad)


def test_the_composite_loads_from_the_three_datasets_folders_under_composite_names(assets, tmp_path, face_frames):
    casme2, samm, smic = tmp_path / "CASME2", tmp_path / "SAMM", tmp_path / "SMIC"
    write_frames(casme2 / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(46, 87)], face_frames)
    write_frames(samm / "006" / "006_1_2", [f"006_{n:05d}.jpg" for n in range(5562, 5633)], face_frames)
    write_frames(smic / "s01" / "micro" / "negative" / "s1_ne_01", [f"image{n}.bmp" for n in range(559740, 559776)],
               face_frames)
    result = load_megc2019_composite(casme2, assets / CASME2_2014, samm, assets / SAMM, smic, assets / SMIC,
                                     reference=assets / GT)
    assert sorted((c.dataset, c.subject, c.name, c.label, c.class_map) for c in result.clips) == [
        ("casme2", "sub01", "EP02_01f", 1, "megc2019-3class"),
        ("samm", "006", "006_1_2", 0, "megc2019-3class"),
        ("smic", "s01", "s1_ne_01", 0, "megc2019-3class"),
    ]
    # the uids are the composite's own sample names (HTNet imagename stems), as trainer.data.megc2019 uses
    import csv

    with open(assets / HTNET, newline="") as handle:
        stems = {Path(r["imagename"]).stem for r in csv.DictReader(handle)}
    assert {c.uid for c in result.clips} <= stems
    assert len(result.clips) + len(result.skipped) == 255 + 159 + 162
    reasons = [why for _, why in result.skipped]
    assert sum("not in the composite reference" in why for why in reasons) == (255 - 145) + (159 - 133) + (162 - 162)
    assert sum("does not exist" in why for why in reasons) == 442 - 3 - 2  # two reference clips are not in the sheets


def test_the_composite_from_frames_is_a_registered_dataset_with_its_three_sheets_as_options(assets, tmp_path, face_frames):
    write_frames(tmp_path / "samm" / "006" / "006_1_2", [f"006_{n:05d}.jpg" for n in range(5562, 5633)], face_frames)
    for part in ("casme2", "smic"):
        (tmp_path / part).mkdir()
    with pytest.raises(MestreamError, match="megc2019-frames needs --loader-option casme2_sheet=VALUE"):
        parse_loader_options("megc2019-frames", [])
    options = parse_loader_options("megc2019-frames", [f"casme2_sheet={assets / CASME2_2014}",
                                                       f"samm_sheet={assets / SAMM}", f"smic_sheet={assets / SMIC}"])
    result = get_loader("megc2019-frames")(tmp_path, assets / GT, **options)
    assert [(c.uid, c.label) for c in result.clips] == [("006_006_1_2", 0)]
