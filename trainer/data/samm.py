"""SAMM from `SAMM_Micro_FACS_Codes_v2.xlsx` and its frames as distributed.

    result = load_samm(Path("SAMM"), Path("SAMM_Micro_FACS_Codes_v2.xlsx"), class_map_name="samm-5class")

Layout: ROOT/006/006_1_2/006_05562.jpg. The sheet has 13 lines of notes above its header; its Onset/Apex/
Offset Frame are the absolute frame numbers of the subject's recording, which the file names carry
(006_05562.jpg is frame 5562), so a clip's positions are found by those numbers.

The original sheet has two apex typos, both with the apex outside [onset, offset]: 028_4_1 (apex 1143,
onset 1071, offset 1134: 1113 meant) and 032_3_1 (apex 1930, onset 4896, offset 4970: 4930 meant).
They are corrected with a warning naming the clip (the corrected copy in davidnvq/me_recognition holds
exactly these values). Any other apex outside its interval is skipped, never guessed.
Class maps: samm-5class (happiness, surprise, anger, contempt, other), samm-8class, megc2019-3class.
"""

from __future__ import annotations

from pathlib import Path

from trainer.data.clips import LoadResult, SheetEntry, check_root, class_map, not_frame_numbers, resolve
from trainer.data.sheets import cell_int, cell_text, read_table

DATASET = "samm"
COLUMNS = ("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units", "Estimated Emotion")
LAYOUT = "006/006_1_2/006_05562.jpg"
# clip -> (apex in the sheet, apex meant); applied only when the sheet still holds the wrong value
APEX_TYPOS: dict[str, tuple[int, int]] = {"028_4_1": (1143, 1113), "032_3_1": (1930, 4930)}


def read_samm_sheet(sheet: Path) -> tuple[list[SheetEntry], LoadResult]:
    """The sheet's clips, with the two known apex typos corrected (as warnings), and the rows it cannot use."""
    table = read_table(sheet, COLUMNS, what="SAMM FACS codes sheet")
    entries, result = [], LoadResult()
    for row in table.rows:
        subject_raw, filename = cell_text(row["Subject"]), cell_text(row["Filename"])
        subject = subject_raw.zfill(3) if subject_raw.isdigit() else subject_raw
        uid = f"{subject}_{filename}"
        onset, apex, offset = (cell_int(row[c]) for c in ("Onset Frame", "Apex Frame", "Offset Frame"))
        if not subject or not filename:
            result.skipped.append((uid, f"line {row.line}: no subject or filename"))
            continue
        typo = APEX_TYPOS.get(filename)
        if typo is not None and apex == typo[0]:
            apex = typo[1]
            result.warnings.append((uid, f"line {row.line}: apex {typo[0]} is outside onset {onset} .. offset "
                                         f"{offset} (known typo); corrected to {apex}"))
        if onset is None or offset is None or apex is None:
            result.skipped.append((uid, not_frame_numbers(row, ("Onset Frame", "Apex Frame", "Offset Frame"))))
            continue
        entries.append(SheetEntry(DATASET, subject, filename, Path(subject) / filename, onset, apex, offset,
                                  cell_text(row["Action Units"]), cell_text(row["Estimated Emotion"]), row.line))
    return entries, result


def load_samm(root: Path, sheet: Path, class_map_name: str = "samm-5class") -> LoadResult:
    """Clips of SAMM under `root` labelled by the official sheet under `class_map_name`."""
    root = check_root(root, "SAMM", LAYOUT)
    cmap = class_map(DATASET, class_map_name)
    entries, result = read_samm_sheet(sheet)
    resolve(entries, root, cmap, result)
    return result
