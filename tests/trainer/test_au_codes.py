"""The AU text of each composite clip comes from the official CASME II and SAMM coding sheets."""

import pytest

from engines.errors import MestreamError
from trainer.data.au_codes import au_text, describe_au_codes, join_coverage, load_au_codes

COMPOSITE_CSV = "annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"


def test_plain_codes_become_facs_names():
    assert describe_au_codes("4+L10") == "AU4 brow lowerer, AU10 left upper lip raiser"
    assert describe_au_codes(12) == "AU12 lip corner puller"


def test_samm_alternatives_intensities_and_references_are_read():
    assert describe_au_codes("(R6 or R12)+R15") == (
        "AU6 right cheek raiser or AU12 right lip corner puller, AU15 right lip corner depressor"
    )
    assert describe_au_codes("4D+ref(6)+7C+43E") == "AU4 brow lowerer, AU6 cheek raiser, AU7 lid tightener, AU43 eyes closed"
    assert describe_au_codes("R14+17+soft focus") == "AU14 right dimpler, AU17 chin raiser"


def test_unknown_coding_gives_empty_text():
    assert describe_au_codes("?") == ""
    assert describe_au_codes(None) == ""


def test_real_sheets_cover_every_casme2_and_samm_clip_of_the_composite(assets):
    codes = load_au_codes(assets / "annotations")
    assert au_text(codes, "casme2", "sub01", "EP02_01f") == "AU12 lip corner puller"
    assert au_text(codes, "samm", "006", "006_1_2") == "AU4 brow lowerer, AU7 lid tightener"
    coverage = join_coverage(codes, assets / COMPOSITE_CSV)
    assert coverage == {"casme2": (145, 145), "samm": (133, 133), "smic": (0, 164)}


def test_smic_clips_have_no_au_text(assets):
    codes = load_au_codes(assets / "annotations")
    assert au_text(codes, "smic", "s04", "s04_ne_05") == ""


def test_folder_without_sheets_names_the_missing_sheet(tmp_path):
    with pytest.raises(MestreamError, match="CASME2-coding-20140508.xlsx"):
        load_au_codes(tmp_path)


def test_sheet_with_unexpected_columns_is_refused(tmp_path):
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl comes with the [train] extra")
    book = openpyxl.Workbook()
    book.active.append(["Subject", "Filename", "Emotion"])
    book.active.append(["01", "EP02_01f", "happiness"])
    book.save(tmp_path / "CASME2-coding-20140508.xlsx")
    with pytest.raises(MestreamError, match="Action Units"):
        load_au_codes(tmp_path)


def test_damaged_sheet_is_reported_by_name(tmp_path):
    (tmp_path / "CASME2-coding-20140508.xlsx").write_bytes(b"not a zip")
    with pytest.raises(MestreamError, match="cannot read"):
        load_au_codes(tmp_path)
