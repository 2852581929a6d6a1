"""SMIC-HS from the SMIC-E annotation sheet (sheet "HS") and its frames as distributed.

    result = load_smic(Path("SMIC/HS"), Path("SMIC-HS-E_annotation_orig.xlsx"), layout="hs", apex="middle")

Layouts, chosen explicitly (`layout`):
    "hs"    ROOT/s01/micro/negative/s1_ne_01/image559740.bmp   the SMIC-HS release (emotion folder)
    "hs-e"  ROOT/s01/s1_ne_01/image559740.jpg                  the SMIC-E (extended clips) release
The sheet's OnsetF/OffsetF are absolute frame numbers of the subject's recording (FirstF is the number of
the first frame of the SMIC-E clip); the file names carry those numbers, so positions are found by them.

SMIC has no apex annotation. It is estimated and every Clip says how (`apex_source`, and a warning):
    "middle"    the middle frame of onset..offset (what MEB does)
    "max-flow"  the frame of onset..offset whose dense optical flow from the onset frame (Farneback, grey,
                whole frame downscaled to 160 px wide; no face alignment) has the largest mean magnitude
                (in the spirit of MEAN's max-flow search)
Class maps: smic-3class / megc2019-3class (negative, positive, surprise: SMIC's own three).
"""

from __future__ import annotations

from pathlib import Path

from engines.errors import MestreamError
from trainer.data.clips import LoadResult, SheetEntry, check_root, class_map, resolve
from trainer.data.sheets import cell_int, cell_text, read_table

DATASET = "smic"
COLUMNS = ("Subject", "Filename", "OnsetF", "OffsetF", "Emotion")
LAYOUTS = {"hs": "s01/micro/negative/s1_ne_01/image559740.bmp", "hs-e": "s01/s1_ne_01/image559740.jpg"}
APEX_METHODS = ("middle", "max-flow")
FLOW_WIDTH = 160  # px: enough for whole-frame motion energy, cheap enough for every frame of a clip


def _folder(layout: str, subject: str, filename: str, emotion: str) -> Path:
    if layout == "hs":
        return Path(subject) / "micro" / emotion.lower() / filename
    return Path(subject) / filename


def read_smic_sheet(sheet: Path, layout: str = "hs", sheet_name: str = "HS") -> tuple[list[SheetEntry], LoadResult]:
    """The HS sheet's clips (absolute frame numbers, apex None) and the rows it cannot use."""
    if layout not in LAYOUTS:
        raise MestreamError(f"SMIC layout {layout!r} is unknown; expected one of {', '.join(LAYOUTS)}")
    table = read_table(sheet, COLUMNS, sheet=sheet_name, what="SMIC-E annotation sheet")
    entries, result = [], LoadResult()
    for row in table.rows:
        number, filename = cell_int(row["Subject"]), cell_text(row["Filename"])
        subject = f"s{number:02d}" if number is not None else cell_text(row["Subject"])
        uid = f"{subject}_{filename}"
        onset, offset = cell_int(row["OnsetF"]), cell_int(row["OffsetF"])
        emotion = cell_text(row["Emotion"])
        if number is None or not filename:
            result.skipped.append((uid, f"line {row.line}: no subject number or filename"))
            continue
        if onset is None or offset is None:
            result.skipped.append((uid, f"line {row.line}: onset {row['OnsetF']!r} / offset {row['OffsetF']!r} "
                                        "are not frame numbers"))
            continue
        entries.append(SheetEntry(DATASET, subject, filename, _folder(layout, subject, filename, emotion), onset,
                                  None, offset, "", emotion, row.line))
    return entries, result


def middle_apex(frames: tuple[Path, ...], onset: int, offset: int) -> tuple[int, str]:
    return (onset + offset) // 2, "middle frame of onset..offset (SMIC has no apex annotation)"


def max_flow_apex(frames: tuple[Path, ...], onset: int, offset: int) -> tuple[int, str]:
    """The position in onset..offset with the largest mean Farneback flow magnitude from the onset frame."""
    import cv2
    import numpy as np

    def grey(position: int) -> np.ndarray:
        image = cv2.imread(str(frames[position - 1]), cv2.IMREAD_GRAYSCALE)
        if image is None:
            from trainer.data.clips import SkipClip

            raise SkipClip(f"frame {frames[position - 1]} cannot be decoded")
        scale = FLOW_WIDTH / image.shape[1]
        return cv2.resize(image, (FLOW_WIDTH, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)

    reference = grey(onset)
    best, best_energy = onset, -1.0
    for position in range(onset + 1, offset + 1):
        flow = cv2.calcOpticalFlowFarneback(reference, grey(position), None, 0.5, 3, 15, 3, 5, 1.2, 0)
        energy = float(np.mean(np.hypot(flow[..., 0], flow[..., 1])))
        if energy > best_energy:
            best, best_energy = position, energy
    return best, (f"max-flow frame of onset..offset (mean Farneback magnitude {best_energy:.3f} px at "
                  f"{FLOW_WIDTH} px wide; SMIC has no apex annotation)")


def load_smic(root: Path, sheet: Path, layout: str = "hs", apex: str = "middle",
              class_map_name: str = "smic-3class", sheet_name: str = "HS") -> LoadResult:
    """Clips of SMIC-HS under `root` (in `layout`), labelled by the SMIC-E sheet, apex estimated by `apex`."""
    if apex not in APEX_METHODS:
        raise MestreamError(f"SMIC apex method {apex!r} is unknown; expected one of {', '.join(APEX_METHODS)}")
    if layout not in LAYOUTS:
        raise MestreamError(f"SMIC layout {layout!r} is unknown; expected one of {', '.join(LAYOUTS)}")
    root = check_root(root, "SMIC-HS", LAYOUTS[layout])
    cmap = class_map(DATASET, class_map_name)
    entries, result = read_smic_sheet(sheet, layout, sheet_name)
    resolve(entries, root, cmap, result, estimate_apex=middle_apex if apex == "middle" else max_flow_apex)
    return result
