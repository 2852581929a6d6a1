"""CAS(ME)^3 part A micro-expressions from the official label sheet and its frames as distributed.

    result = load_casme3(Path("part_A"), Path("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"))

Layout: ROOT/spNO.1/a/color/355.jpg. Each (subject, filename) folder is a whole recording and several
micro-expressions can come from one recording, so a clip is named "<filename>_<onset>" ("a_355") and its
frames are just onset..offset of that folder (positions 1..N): the sheet's Onset/Apex/Offset are the
JPEG numbers (JpgIndex). The sheet stores them as text; rows with an apex outside [onset, offset] or an
offset of 0 (there are four in v2) are skipped and named. HTNet's edited CSV has the same columns.
Class maps: casme3-7class (happy, surprise, sad, disgust, fear, anger, others), casme3-6class (no
others; HTNet's label_for_7 minus one), casme3-3class (HTNet's label_for_3: negative, positive, surprise).
"""

from __future__ import annotations

from pathlib import Path

from trainer.data.clips import LoadResult, SheetEntry, check_root, class_map, not_frame_numbers, resolve
from trainer.data.sheets import cell_int, cell_text, read_table

DATASET = "casme3"
COLUMNS = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "emotion")
LAYOUT = "spNO.1/a/color/355.jpg"


def read_casme3_sheet(sheet: Path, sheet_name: str | None = None) -> tuple[list[SheetEntry], LoadResult]:
    table = read_table(sheet, COLUMNS, sheet=sheet_name, what="CAS(ME)^3 part A label sheet")
    entries, result = [], LoadResult()
    for row in table.rows:
        subject, filename = cell_text(row["Subject"]), cell_text(row["Filename"])
        onset, apex, offset = (cell_int(row[c]) for c in ("Onset", "Apex", "Offset"))
        name = f"{filename}_{onset if onset is not None else cell_text(row['Onset'])}"
        if not subject or not filename:
            result.skipped.append((f"{subject}_{name}", f"line {row.line}: no subject or filename"))
            continue
        if None in (onset, apex, offset):
            result.skipped.append((f"{subject}_{name}", not_frame_numbers(row, ("Onset", "Apex", "Offset"))))
            continue
        entries.append(SheetEntry(DATASET, subject, name, Path(subject) / filename / "color", onset, apex, offset,
                                  cell_text(row["AU"]), cell_text(row["emotion"]), row.line))
    return entries, result


def load_casme3(root: Path, sheet: Path, class_map_name: str = "casme3-7class", sheet_name: str | None = None) -> LoadResult:
    """Clips of CAS(ME)^3 part A under `root` labelled by the sheet under `class_map_name`."""
    root = check_root(root, "CAS(ME)^3 part A", LAYOUT)
    cmap = class_map(DATASET, class_map_name)
    entries, result = read_casme3_sheet(sheet, sheet_name)
    resolve(entries, root, cmap, result, window_only=True)
    return result
