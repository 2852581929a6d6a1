"""CASME II from its official coding sheet and its frames as distributed.

    result = load_casme2(Path("CASME2_RAW_selected"), Path("CASME2-coding-20190701.xlsx"), version="2019-07-01")

Layout: ROOT/sub01/EP02_01f/img46.jpg (CASME2_RAW_selected; the Cropped release's reg_img46.jpg works too:
frames are found by the number ending the file name). The sheet's OnsetFrame/ApexFrame/OffsetFrame are
those numbers.

Two official sheet versions exist and give different ground truth (2019-07-01 changed the AUs of 57 clips
and the emotion of 3, and added "Objective Classes"), so the version is an explicit argument and the
sheet's columns must match it. The one clip with apex "/" (sub04 EP12_01f) gets the middle frame, with a
warning. Class maps: casme2-5class (happiness, surprise, disgust, repression, others), casme2-7class,
megc2019-3class (disgust + repression = negative; fear and sadness are not in it).
"""

from __future__ import annotations

from pathlib import Path

from engines.errors import MestreamError
from trainer.data.clips import LoadResult, SheetEntry, check_root, class_map, resolve
from trainer.data.sheets import cell_int, cell_text, read_table

DATASET = "casme2"
BASE_COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
# version -> (columns it must have, columns it must not have)
VERSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "2014-05-08": (BASE_COLUMNS, ("Objective Classes",)),
    "2019-07-01": (BASE_COLUMNS + ("Objective Classes",), ()),
}
LAYOUT = "sub01/EP02_01f/img46.jpg"


def read_casme2_sheet(sheet: Path, version: str) -> tuple[list[SheetEntry], LoadResult]:
    """The sheet's clips (frame numbers as written) and the rows it cannot use, by name."""
    if version not in VERSIONS:
        raise MestreamError(f"CASME II sheet version {version!r} is unknown; expected one of {', '.join(VERSIONS)}")
    required, forbidden = VERSIONS[version]
    table = read_table(sheet, required, what=f"CASME II {version} coding sheet")
    extra = [c for c in forbidden if c in table.header]
    if extra:
        other = next(v for v, (need, _) in VERSIONS.items() if all(c in need for c in extra))
        raise MestreamError(f"CASME II sheet {sheet} has column {extra[0]!r}, which the {version} version lacks: "
                            f"it looks like the {other} sheet; pass version {other} or the {version} sheet")
    entries, result = [], LoadResult()
    for row in table.rows:
        subject_raw, filename = cell_text(row["Subject"]), cell_text(row["Filename"])
        subject = f"sub{int(subject_raw):02d}" if subject_raw.isdigit() else subject_raw
        onset, apex, offset = (cell_int(row[c]) for c in ("OnsetFrame", "ApexFrame", "OffsetFrame"))
        uid = f"{subject}_{filename}"
        if not subject or not filename:
            result.skipped.append((uid, f"line {row.line}: no subject or filename"))
            continue
        if onset is None or offset is None:
            result.skipped.append((uid, f"line {row.line}: onset {row['OnsetFrame']!r} / offset "
                                        f"{row['OffsetFrame']!r} are not frame numbers"))
            continue
        if apex is None and onset <= offset:
            apex = (onset + offset) // 2
            result.warnings.append((uid, f"line {row.line}: apex {row['ApexFrame']!r} is not a frame number; "
                                         f"middle frame {apex} used"))
        entries.append(SheetEntry(DATASET, subject, filename, Path(subject) / filename, onset, apex, offset,
                                  cell_text(row["Action Units"]), cell_text(row["Estimated Emotion"]), row.line,
                                  "sheet" if cell_int(row["ApexFrame"]) is not None else "middle frame (sheet apex missing)"))
    return entries, result


def load_casme2(root: Path, sheet: Path, version: str, class_map_name: str = "casme2-5class") -> LoadResult:
    """Clips of CASME II under `root` labelled by the `version` coding sheet under `class_map_name`."""
    root = check_root(root, "CASME II", LAYOUT)
    cmap = class_map(DATASET, class_map_name)
    entries, result = read_casme2_sheet(sheet, version)
    resolve(entries, root, cmap, result)
    return result
