"""Reading the official sheets: headers found below notes, wrong columns named, cells and AU codes normalised."""

import pytest

from engines.errors import MestreamError
from trainer.data.sheets import cell_int, cell_text, parse_action_units, read_rows, read_table

SAMM = "annotations/MouathAb_AnalyseMiE/SAMM_Micro_FACS_Codes_v2.xlsx"
CASME2_2014 = "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx"


def test_the_samm_header_is_found_below_its_thirteen_lines_of_notes(assets):
    table = read_table(assets / SAMM, ("Subject", "Filename", "Onset Frame"))
    assert table.sheet == "MICRO_ONLY"
    assert len(table.rows) == 159
    first = table.rows[0]
    assert first.line == 15 and first["Filename"] == "006_1_2" and first["Onset Frame"] == 5562


def test_a_sheet_without_the_needed_columns_names_the_columns_expected_and_found(assets):
    with pytest.raises(MestreamError) as caught:
        read_table(assets / CASME2_2014, ("Subject", "Onset Frame"), what="SAMM sheet")
    message = str(caught.value)
    assert "lacks column(s) Onset Frame" in message
    assert "found Subject, Filename, OnsetFrame" in message
    assert "\n" not in message


def test_a_csv_with_another_header_is_refused_by_name(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_text("name,start,end\nclip,1,2\n")
    with pytest.raises(MestreamError, match="lacks column.*found name, start, end"):
        read_table(sheet, ("subject", "video"), header_row=0)


def test_blank_rows_are_left_out_and_lines_keep_the_sheets_numbering(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_text("subject,video\n1,a\n,\n2,b\n")
    table = read_table(sheet, ("subject", "video"), header_row=0)
    assert [(r.line, r["video"]) for r in table.rows] == [(2, "a"), (4, "b")]


def test_a_missing_file_an_old_xls_and_an_unknown_worksheet_are_user_errors(assets, tmp_path):
    with pytest.raises(MestreamError, match="does not exist"):
        read_rows(tmp_path / "nope.xlsx")
    old = tmp_path / "CASME2_label_Ver_2.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(MestreamError, match="expected .xlsx or .csv"):
        read_rows(old)
    with pytest.raises(MestreamError, match="no worksheet 'HS'.*Sheet1"):
        read_rows(assets / CASME2_2014, sheet="HS")


def test_frame_cells_become_integers_and_placeholders_become_none():
    assert [cell_int(v) for v in (46, 46.0, "355", " 12 ", "/", "", None, "?", 46.5, True)] == \
        [46, 46, 355, 12, None, None, None, None, None, None]
    assert cell_text(12.0) == "12" and cell_text(None) == "" and cell_text(" EP02_01f ") == "EP02_01f"


@pytest.mark.parametrize("raw, codes", [
    (12, ("AU12",)),
    ("4+7+L10", ("AU4", "AU7", "L10")),
    ("(R6 or R12) + R15", ("R6/R12", "R15")),
    ("A/L12", ("A12/L12",)),
    ("4(B/C)+7B", ("AU4", "AU7")),
    ("ref(7B)+43C", ("AU7", "AU43")),
    ("12L", ("L12",)),
    ("T28+14", ("T28", "AU14")),
    ("?", ()),
    ("soft focus", ()),
])
def test_action_unit_cells_are_normalised_to_au_codes_with_sides(raw, codes):
    assert parse_action_units(raw) == codes


def test_every_au_cell_of_the_real_samm_sheet_yields_at_least_one_code(assets):
    table = read_table(assets / SAMM, ("Action Units",))
    empty = [r["Action Units"] for r in table.rows if cell_text(r["Action Units"]) not in ("", "?")
             and not parse_action_units(r["Action Units"])]
    assert empty == []
