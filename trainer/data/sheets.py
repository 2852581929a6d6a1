"""Reading the official annotation sheets (.xlsx / .csv) as tables, with their columns checked.

The datasets ship their labels as spreadsheets with quirks: SAMM has 13 lines of notes above the header,
CASME II has blank columns, CAS(ME)^3 stores frame numbers as text, some cells hold "/" or "?". This
module turns a sheet into a `Table` of rows keyed by header name and gives the cell converters every
loader uses, so that each loader only says which columns it needs and what they mean.

    table = read_table(Path("CASME2-coding-20190701.xlsx"), ("Subject", "Filename", "OnsetFrame"))
    for row in table.rows:            # row.line is the sheet's own 1-based line number
        onset = cell_int(row["OnsetFrame"])

A sheet without the needed columns is a MestreamError naming the columns expected and found.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from engines.errors import MestreamError
from engines.optional import require

HEADER_SEARCH_ROWS = 40  # SAMM's header is on line 14; nothing official puts it lower


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line in the sheet, for messages
    cells: dict[str, object]

    def __getitem__(self, column: str) -> object:
        return self.cells.get(column)


@dataclass(frozen=True)
class Table:
    path: Path
    sheet: str  # worksheet name ("" for CSV)
    header: tuple[str, ...]  # every non-empty header cell, in order
    rows: tuple[Row, ...]


def _read_xlsx(path: Path, sheet: str | None) -> tuple[str, list[tuple]]:
    openpyxl = require("openpyxl", "train")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile / KeyError / ValueError kinds for a damaged file
        raise MestreamError(f"cannot read {path} ({exc.__class__.__name__}); expected an .xlsx sheet") from None
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif sheet in book.sheetnames:
            ws = book[sheet]
        else:
            raise MestreamError(f"{path} has no worksheet {sheet!r} (it has {', '.join(book.sheetnames)}); "
                                "pass the official sheet")
        return ws.title, list(ws.iter_rows(values_only=True))
    finally:
        book.close()


def _read_csv(path: Path) -> list[tuple]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return [tuple(c if c != "" else None for c in row) for row in csv.reader(handle)]
    except UnicodeDecodeError:
        raise MestreamError(f"{path} is not UTF-8 text; expected a .csv annotation file") from None


def read_rows(path: Path, sheet: str | None = None) -> tuple[str, list[tuple]]:
    """All rows of an .xlsx worksheet (the first one unless named) or of a .csv file, cells as stored."""
    path = Path(path)
    if not path.is_file():
        raise MestreamError(f"annotation sheet {path} does not exist; pass the path of the official sheet")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet)
    if suffix == ".csv":
        return "", _read_csv(path)
    raise MestreamError(f"annotation sheet {path} has suffix {suffix!r}; expected .xlsx or .csv "
                        "(save an old .xls as .xlsx first)")


def _header_cells(row: tuple) -> list[str]:
    return [str(c).strip() if c is not None else "" for c in row]


def read_table(path: Path, required: tuple[str, ...], sheet: str | None = None, what: str = "annotation sheet",
               header_row: int | None = None) -> Table:
    """The sheet's rows below its header, keyed by header name; blank rows are left out.

    The header is the first row (of the first HEADER_SEARCH_ROWS) holding every `required` name, unless
    `header_row` (0-based) pins it, as for CSV files whose header must be line 1.
    """
    path = Path(path)
    title, rows = read_rows(path, sheet)
    candidates = range(min(len(rows), HEADER_SEARCH_ROWS)) if header_row is None else [header_row]
    for number in candidates:
        if number >= len(rows):
            break
        cells = _header_cells(rows[number])
        if all(name in cells for name in required):
            index = {}
            for i, name in enumerate(cells):
                if name and name not in index:  # a repeated header name keeps its first column
                    index[name] = i
            body = []
            for line, row in enumerate(rows[number + 1:], start=number + 2):
                if all(c is None or str(c).strip() == "" for c in row):
                    continue
                body.append(Row(line, {name: (row[i] if i < len(row) else None) for name, i in index.items()}))
            return Table(path, title, tuple(n for n in cells if n), tuple(body))
    found = _header_cells(rows[0 if header_row is None else min(header_row, len(rows) - 1)]) if rows else []
    found = [c for c in found if c]
    raise MestreamError(f"{what} {path}{f' [{title}]' if title else ''} lacks column(s) "
                        f"{', '.join(n for n in required if n not in found) or ', '.join(required)}: expected "
                        f"{', '.join(required)}, found {', '.join(found) or 'no header'}; pass the official sheet")


# ---- cells --------------------------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """A cell as stripped text; integral floats lose their ".0" (12.0 -> "12"); empty -> ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cell_int(value: object) -> int | None:
    """A frame number from a cell: 46, 46.0 or "46" -> 46; "/", "", "?", 46.5 -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = cell_text(value)
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return int(float(text))
    return None


# ---- action units -------------------------------------------------------------------------------------

# One coded term: optional side letter (L/R/A asymmetric, T/B top/bottom), the AU number, then intensity
# letters and notes that the normalised form drops ("4(B/C)", "7B", "ref(7B)", "12?").
_TERM = re.compile(r"^(?:ref\()?\s*([LRATB])?\s*(\d{1,3})\s*(?:[A-E](?:/[A-E])?)?\s*(?:\([A-E/]+\))?\s*\)?\s*\??$",
                   re.IGNORECASE)


def split_top_level(text: str, sep: str) -> list[str]:
    """`text` split on `sep` outside parentheses: "(R6 or R12)+R15" -> ["(R6 or R12)", "R15"]."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _normalise_term(term: str) -> str:
    term = term.strip()
    if term.startswith("(") and term.endswith(")") and " or " in term:
        term = term[1:-1]
    if " or " in term.lower():
        alternatives = [_normalise_term(t) for t in re.split(r"\s+or\s+", term, flags=re.IGNORECASE)]
        return "/".join(a for a in alternatives if a)
    shared = re.fullmatch(r"([LRATB])\s*/\s*([LRATB])\s*(\d{1,3})", term, flags=re.IGNORECASE)
    if shared:  # SAMM "A/L12": asymmetric or left AU12
        return f"{shared.group(1).upper()}{shared.group(3)}/{shared.group(2).upper()}{shared.group(3)}"
    suffix = re.fullmatch(r"(\d{1,3})\s*([LR])", term, flags=re.IGNORECASE)
    if suffix:  # MMEW "12L": the side written after the number (A-E after a number are intensities)
        return f"{suffix.group(2).upper()}{suffix.group(1)}"
    match = _TERM.match(term)
    if not match:
        return ""
    side, number = match.group(1), int(match.group(2))
    return f"{side.upper()}{number}" if side else f"AU{number}"


def parse_action_units(raw: object) -> tuple[str, ...]:
    """A sheet's AU cell as normalised codes: "4+7+L10" -> ("AU4", "AU7", "L10"); 12 -> ("AU12",).

    A side letter replaces "AU" (R12 = AU12 on the right; MMEW's "12L" = L12); intensity letters ("7B", "4(B/C)") are dropped;
    alternatives ("L2 or R2", "A/L12") become one code ("L2/R2", "A12/L12"); notes that are not AUs ("?", "soft focus") are dropped.
    The raw string is kept next to this by every loader, so nothing is lost.
    """
    text = cell_text(raw)
    if not text or text == "?":
        return ()
    codes = []
    for term in split_top_level(text.replace(",", "+"), "+"):
        code = _normalise_term(term)
        if code and code not in codes:
            codes.append(code)
    return tuple(codes)
