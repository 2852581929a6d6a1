"""MMEW micro-expressions from the MMEW sheet (or HTNet's CSV export of it) and its frames as distributed.

    result = load_mmew(Path("MMEW/Micro_Expression"), Path("MMEW_Micro_Exp_delete_others.csv"))

Layout: ROOT/happiness/S01-01-001/15.jpg: one folder per emotion, one per clip, frames numbered from 1
as the sheet's OnsetFrame/ApexFrame/OffsetFrame. The subject is the "Sxx" that starts each file name
(the sheet's Subject column, 1 -> "S01"). HTNet's CSVs drop "others" (and, in the _anger file, anger).
Class maps: mmew-6class (happiness, surprise, sadness, disgust, fear, anger: HTNet's 1-based `label`
minus one), mmew-5class (without anger).
"""

from __future__ import annotations

from pathlib import Path

from trainer.data.clips import LoadResult, SheetEntry, check_root, class_map, not_frame_numbers, resolve
from trainer.data.sheets import cell_int, cell_text, read_table

DATASET = "mmew"
COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
LAYOUT = "happiness/S01-01-001/15.jpg"


def read_mmew_sheet(sheet: Path) -> tuple[list[SheetEntry], LoadResult]:
    table = read_table(sheet, COLUMNS, what="MMEW annotation sheet")
    entries, result = [], LoadResult()
    for row in table.rows:
        number, filename = cell_int(row["Subject"]), cell_text(row["Filename"])
        subject = f"S{number:02d}" if number is not None else cell_text(row["Subject"])
        uid = f"{subject}_{filename}"
        onset, apex, offset = (cell_int(row[c]) for c in ("OnsetFrame", "ApexFrame", "OffsetFrame"))
        emotion = cell_text(row["Estimated Emotion"])
        if number is None or not filename:
            result.skipped.append((uid, f"line {row.line}: no subject number or filename"))
            continue
        if None in (onset, apex, offset):
            result.skipped.append((uid, not_frame_numbers(row, ("OnsetFrame", "ApexFrame", "OffsetFrame"))))
            continue
        entries.append(SheetEntry(DATASET, subject, filename, Path(emotion.lower()) / filename, onset, apex, offset,
                                  cell_text(row["Action Units"]), emotion, row.line))
    return entries, result


def load_mmew(root: Path, sheet: Path, class_map_name: str = "mmew-6class") -> LoadResult:
    """Clips of MMEW under `root` labelled by the sheet under `class_map_name`."""
    root = check_root(root, "MMEW", LAYOUT)
    cmap = class_map(DATASET, class_map_name)
    entries, result = read_mmew_sheet(sheet)
    resolve(entries, root, cmap, result)
    return result
