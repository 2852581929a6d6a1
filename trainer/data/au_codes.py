"""FACS action-unit codes of each micro-expression clip, read from the official coding sheets, as text.

`load_au_codes(sheets_dir)` reads the CASME II sheet (CASME2-coding-20140508.xlsx, the version the
MEGC2019 composite was built from) and the SAMM sheet (SAMM_Micro_FACS_Codes_v2.xlsx) found under
`sheets_dir`, and returns `{(dataset, sub, filename_o): "AU12 lip corner puller, AU6 cheek raiser"}`
keyed exactly like the composite CSV (`casme2, sub01, EP02_01f` / `samm, 006, 006_1_2`).
SMIC was never FACS-coded, so SMIC clips have no entry; `au_text(...)` gives "" for them.
fusion3d encodes this text with a frozen sentence encoder (attribute embedding).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from engines.errors import MestreamError
from trainer.data.sheets import read_table, split_top_level

CASME2_SHEET = "CASME2-coding-20140508.xlsx"
SAMM_SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"

# FACS 2002 names (Ekman, Friesen & Hager), the wording the text encoder sees.
FACS_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 8: "lips toward each other", 9: "nose wrinkler",
    10: "upper lip raiser", 11: "nasolabial deepener", 12: "lip corner puller", 13: "sharp lip puller",
    14: "dimpler", 15: "lip corner depressor", 16: "lower lip depressor", 17: "chin raiser",
    18: "lip pucker", 19: "tongue show", 20: "lip stretcher", 21: "neck tightener", 22: "lip funneler",
    23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop", 27: "mouth stretch",
    28: "lip suck", 29: "jaw thrust", 30: "jaw sideways", 31: "jaw clencher", 32: "lip bite",
    33: "cheek blow", 34: "cheek puff", 35: "cheek suck", 36: "tongue bulge", 37: "lip wipe",
    38: "nostril dilator", 39: "nostril compressor", 41: "lid droop", 42: "slit", 43: "eyes closed",
    44: "squint", 45: "blink", 46: "wink", 51: "head turn left", 52: "head turn right", 53: "head up",
    54: "head down", 55: "head tilt left", 56: "head tilt right", 57: "head forward", 58: "head back",
    61: "eyes turn left", 62: "eyes turn right", 63: "eyes up", 64: "eyes down",
}
_SIDES = {"L": "left", "R": "right", "A": "asymmetric", "T": "top", "B": "bottom"}
# One coded term: optional ref(...), optional side letter, AU number, optional intensity letters (A-E, "A/B").
_TERM = re.compile(r"^(?:ref\()?\s*([LRATB])?\s*(\d{1,2})\s*([A-E](?:/[A-E])?)?\s*\)?$", re.IGNORECASE)


def describe_au_term(term: str) -> str:
    """One coded term ("L12A", "ref(7B)", "(R6 or R12)") as FACS words; "" for uncodable notes ("soft focus", "?")."""
    term = term.strip().strip("()").strip()
    if " or " in term or re.fullmatch(r"[LRATB]/[LRATB]\d+", term):
        # "R12 or R14" and "A/L12" (asymmetric or left): keep the alternatives, they are both plausible.
        if " or " not in term:
            sides, number = term.split("/")[0], term.split("/")[1]
            return describe_au_term(sides + number[1:]) + " or " + describe_au_term(number)
        parts = [describe_au_term(p) for p in term.split(" or ")]
        return " or ".join(p for p in parts if p)
    match = _TERM.match(term)
    if not match:
        return ""
    side, number = match.group(1), int(match.group(2))
    name = FACS_NAMES.get(number)
    if name is None:
        return f"AU{number}"
    if side:
        return f"AU{number} {_SIDES[side.upper()]} {name}"
    return f"AU{number} {name}"


def describe_au_codes(code: object) -> str:
    """A sheet cell ("4+L10", 12, "(R6 or R12)+R15") as "AU4 brow lowerer, AU10 left upper lip raiser"."""
    if code is None:
        return ""
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    text = str(code).strip()
    if not text or text == "?":
        return ""
    # split on "+" outside parentheses, so "(R6 or R12)+R15" keeps its alternative together
    words = [describe_au_term(t) for t in split_top_level(text, "+")]
    return ", ".join(w for w in words if w)


def _find_sheet(sheets_dir: Path, name: str) -> Path:
    # The official sheets keep their distributed names; copies in several sub-folders hold the same AU codes
    # (the two SAMM copies differ only in two apex frames), so the first in sorted order is taken.
    if not sheets_dir.is_dir():
        raise MestreamError(f"annotation folder {sheets_dir} does not exist; pass the folder that holds {name}")
    found = sorted(sheets_dir.rglob(name))
    if not found:
        raise MestreamError(f"no {name} under {sheets_dir}; put the official coding sheet there or pass its folder")
    return found[0]


def _subject(value: object, width: int) -> str:
    if isinstance(value, (int, float)):
        return f"{int(value):0{width}d}"
    return str(value).strip().zfill(width)


def load_au_codes(sheets_dir: Path | str) -> dict[tuple[str, str, str], str]:
    """Map (dataset, sub, filename_o), keyed as in the composite CSV, to the clip's AU text.

    CASME II subjects become "sub01", SAMM subjects stay "006". Clips coded "?" map to "".
    """
    sheets_dir = Path(sheets_dir)
    codes: dict[tuple[str, str, str], str] = {}
    for dataset, name, width, prefix in (("casme2", CASME2_SHEET, 2, "sub"), ("samm", SAMM_SHEET, 3, "")):
        path = _find_sheet(sheets_dir, name)
        table = read_table(path, ("Subject", "Filename", "Action Units"), what="coding sheet")
        for row in table.rows:
            subject, filename = row["Subject"], row["Filename"]
            if subject is None or filename is None:
                continue
            key = (dataset, prefix + _subject(subject, width), str(filename).strip())
            codes[key] = describe_au_codes(row["Action Units"])
    return codes


def au_text(codes: dict[tuple[str, str, str], str], dataset: str, sub: str, filename_o: str) -> str:
    """The AU text of one composite clip, "" when its dataset was not FACS-coded (SMIC) or the clip is missing."""
    return codes.get((dataset, sub, filename_o), "")


def join_coverage(codes: dict[tuple[str, str, str], str], labels_csv: Path | str) -> dict[str, tuple[int, int]]:
    """Per dataset of the composite CSV: (clips with non-empty AU text, clips). For reports and tests."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise MestreamError(f"labels CSV {labels_csv} does not exist; pass the composite CSV")
    coverage: dict[str, list[int]] = {}
    with labels_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"dataset", "sub", "filename_o"} - set(reader.fieldnames or ())
        if missing:
            raise MestreamError(f"{labels_csv} lacks columns {sorted(missing)}; expected dataset,sub,filename_o,...")
        for row in reader:
            counts = coverage.setdefault(row["dataset"], [0, 0])
            counts[0] += bool(au_text(codes, row["dataset"], row["sub"], row["filename_o"]))
            counts[1] += 1
    return {dataset: (hit, total) for dataset, (hit, total) in coverage.items()}
