"""The MEGC2019 composite (CASME II + SAMM + SMIC-HS, 3 classes) rebuilt from the three datasets' own sheets.

The challenge defines the composite by grouping each source's emotions into negative / positive /
surprise (clips.CLASS_MAPS "megc2019-3class") and dropping the rest. This module rebuilds that list
from the official sheets and checks it against a published reference list, clip by clip:

    rows, _ = composite_rows(casme2_sheet, "2014-05-08", samm_sheet, smic_sheet)
    report = compare_with_reference(rows, Path("combined_3class_gt.csv"))   # matched / wrong label / extra / missing

and loads the clips with their frames (restricted to the reference list when one is given):

    result = load_megc2019_composite(casme2_root, casme2_sheet, samm_root, samm_sheet, smic_root, smic_sheet,
                                     reference=Path("combined_3class_gt.csv"))

Keys follow the composite CSVs: (dataset, subject, clip) with CASME II "sub01"/"EP02_01f", SAMM "006"/
"006_1_2" (the reference's "6" is zero-padded), SMIC "s01"/"s01_ne_01" (SMIC's own "s1_ne_01" renamed
with the padded subject, as the composite does).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from engines.errors import MestreamError
from trainer.data.clips import Clip, LoadResult, SheetEntry, SkipClip, class_map, resolve

CLASS_MAP = "megc2019-3class"
PARTS = ("casme2", "samm", "smic")


@dataclass(frozen=True)
class CompositeRow:
    dataset: str
    subject: str
    clip: str
    label: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dataset, self.subject, self.clip)


def composite_subject(dataset: str, subject: str) -> str:
    """A subject as every composite CSV can be matched on: "sub01", "006", "s01"."""
    subject = subject.strip()
    if dataset == "samm" and subject.isdigit():
        return subject.zfill(3)
    if dataset == "smic" and subject[1:].isdigit() and subject[:1].lower() == "s":
        return f"s{int(subject[1:]):02d}"
    if dataset == "casme2" and subject.isdigit():
        return f"sub{int(subject):02d}"
    return subject


def composite_clip(dataset: str, subject: str, name: str) -> str:
    """SMIC's "s1_ne_01" becomes "s01_ne_01"; CASME II and SAMM clip names are used as they are."""
    if dataset == "smic" and "_" in name:
        return f"{composite_subject(dataset, subject)}_{name.split('_', 1)[1]}"
    return name


def _row(entry: SheetEntry | Clip, label: int) -> CompositeRow:
    subject = composite_subject(entry.dataset, entry.subject)
    return CompositeRow(entry.dataset, subject, composite_clip(entry.dataset, subject, entry.name), label)


def _sheet_entries(casme2_sheet: Path, casme2_version: str, samm_sheet: Path, smic_sheet: Path,
                   smic_layout: str) -> tuple[dict[str, list[SheetEntry]], LoadResult]:
    from trainer.data.casme2 import read_casme2_sheet
    from trainer.data.samm import read_samm_sheet
    from trainer.data.smic import read_smic_sheet

    found, result = {}, LoadResult()
    for dataset, (entries, problems) in (("casme2", read_casme2_sheet(casme2_sheet, casme2_version)),
                                         ("samm", read_samm_sheet(samm_sheet)),
                                         ("smic", read_smic_sheet(smic_sheet, smic_layout))):
        found[dataset] = entries
        result.extend(problems)
    return found, result


def composite_rows(casme2_sheet: Path, casme2_version: str, samm_sheet: Path, smic_sheet: Path,
                   smic_layout: str = "hs") -> tuple[list[CompositeRow], LoadResult]:
    """Every clip of the three sheets that the 3-class grouping keeps, with its label; the rest are skipped by name."""
    found, result = _sheet_entries(casme2_sheet, casme2_version, samm_sheet, smic_sheet, smic_layout)
    rows = []
    for dataset, entries in found.items():
        cmap = class_map(dataset, CLASS_MAP)
        for entry in entries:
            try:
                rows.append(_row(entry, cmap.label_of(entry.emotion)))
            except SkipClip as exc:
                result.skipped.append((entry.uid, f"line {entry.line}: {exc}"))
    return rows, result


def read_reference(path: Path) -> list[CompositeRow]:
    """A composite list: davidnvq's headerless dataset,subject,clip,label or a CSV with a header naming
    (dataset|data, sub|subject, filename_o|clip, label), as HTNet's combined_3_class2_for_optical_flow.csv."""
    path = Path(path)
    if not path.is_file():
        raise MestreamError(f"composite reference {path} does not exist; pass e.g. combined_3class_gt.csv")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        lines = [row for row in csv.reader(handle) if any(c.strip() for c in row)]
    if not lines:
        raise MestreamError(f"composite reference {path} is empty; expected one row per clip")
    header = [c.strip() for c in lines[0]]
    if "label" in header:
        names = {}
        for role, choices in (("dataset", ("dataset", "data")), ("subject", ("sub", "subject")),
                              ("clip", ("filename_o", "clip")), ("label", ("label",))):
            hit = [c for c in choices if c in header]
            if not hit:
                raise MestreamError(f"composite reference {path} has no {'/'.join(choices)} column (found "
                                    f"{', '.join(header)}); expected dataset, subject, clip and label columns")
            names[role] = header.index(hit[0])
        body = lines[1:]
    else:
        names, body = {"dataset": 0, "subject": 1, "clip": 2, "label": 3}, lines
    rows = []
    for number, row in enumerate(body, start=2 if body is not lines else 1):
        try:
            dataset = row[names["dataset"]].strip()
            subject = composite_subject(dataset, row[names["subject"]])
            rows.append(CompositeRow(dataset, subject, composite_clip(dataset, subject, row[names["clip"]].strip()),
                                     int(row[names["label"]])))
        except (IndexError, ValueError):
            raise MestreamError(f"composite reference {path} line {number}: {','.join(row)!r} is not "
                                "dataset,subject,clip,label with an integer label; fix the file") from None
    return rows


@dataclass
class Comparison:
    matched: list[CompositeRow] = field(default_factory=list)
    wrong_label: list[tuple[CompositeRow, int]] = field(default_factory=list)  # (rebuilt row, reference label)
    extra: list[CompositeRow] = field(default_factory=list)  # rebuilt, not in the reference
    missing: list[CompositeRow] = field(default_factory=list)  # in the reference, not rebuilt

    def per_dataset(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, rows in (("matched", self.matched), ("wrong_label", [r for r, _ in self.wrong_label]),
                           ("extra", self.extra), ("missing", self.missing)):
            for row in rows:
                out.setdefault(row.dataset, {"matched": 0, "wrong_label": 0, "extra": 0, "missing": 0})[kind] += 1
        return out


def compare_with_reference(rows: list[CompositeRow], reference: Path | list[CompositeRow]) -> Comparison:
    """Clip by clip: same label, other label, only rebuilt, only in the reference."""
    ref = read_reference(reference) if isinstance(reference, (str, Path)) else reference
    by_key = {r.key: r for r in ref}
    seen = set()
    result = Comparison()
    for row in rows:
        other = by_key.get(row.key)
        if other is None:
            result.extra.append(row)
        elif other.label == row.label:
            result.matched.append(row)
        else:
            result.wrong_label.append((row, other.label))
        seen.add(row.key)
    result.missing = [r for r in ref if r.key not in seen]
    return result


def load_megc2019_composite(casme2_root: Path, casme2_sheet: Path, samm_root: Path, samm_sheet: Path,
                            smic_root: Path, smic_sheet: Path, casme2_version: str = "2014-05-08",
                            smic_layout: str = "hs", smic_apex: str = "middle",
                            reference: Path | None = None) -> LoadResult:
    """The composite's clips with their frames; with `reference`, only its clips (others skipped by name).

    Subjects are already the composite's LOSO units ("sub01", "006", "s01"), and Clip.uid is the stem of
    the composite's apex image name (HTNet imagename: "sub01_EP02_01f", "006_006_1_2", "s01_s1_ne_01"),
    so samples made from these clips line up with trainer.data.megc2019's names.
    """
    from trainer.data.clips import check_root
    from trainer.data.smic import max_flow_apex, middle_apex

    found, result = _sheet_entries(casme2_sheet, casme2_version, samm_sheet, smic_sheet, smic_layout)
    wanted = {r.key: r for r in read_reference(reference)} if reference is not None else None
    roots = {"casme2": check_root(casme2_root, "CASME II", "sub01/EP02_01f/img46.jpg"),
             "samm": check_root(samm_root, "SAMM", "006/006_1_2/006_05562.jpg"),
             "smic": check_root(smic_root, "SMIC-HS", "s01/micro/negative/s1_ne_01/")}
    for dataset in PARTS:
        cmap = class_map(dataset, CLASS_MAP)
        entries = found[dataset]
        if wanted is not None:
            keep = []
            for entry in entries:
                key = _row(entry, -1).key
                if key in wanted:
                    keep.append(entry)
                else:
                    result.skipped.append((entry.uid, f"line {entry.line}: not in the composite reference {reference}"))
            entries = keep
        part = LoadResult()
        estimate = None if dataset != "smic" else (middle_apex if smic_apex == "middle" else max_flow_apex)
        resolve(entries, roots[dataset], cmap, part, estimate_apex=estimate)
        for clip in part.clips:
            row = _row(clip, clip.label)
            if wanted is not None and wanted[row.key].label != clip.label:
                part.warnings.append((clip.uid, f"label {clip.label} from the sheet, {wanted[row.key].label} in the "
                                                "reference; the sheet's is kept"))
            result.clips.append(clip)
        result.skipped.extend(part.skipped)
        result.warnings.extend(part.warnings)
    return result


def load_megc2019_frames(root: Path, sheet: Path, casme2_sheet: str, samm_sheet: str, smic_sheet: str,
                         casme2_version: str = "2014-05-08", smic_layout: str = "hs",
                         smic_apex: str = "middle") -> LoadResult:
    """The composite from frames for `mestream train --dataset megc2019-frames`: ROOT/casme2, ROOT/samm and
    ROOT/smic hold the three datasets as they ship; `sheet` is the composite list (combined_3class_gt.csv)."""
    root = Path(root)
    return load_megc2019_composite(root / "casme2", Path(casme2_sheet), root / "samm", Path(samm_sheet),
                                   root / "smic", Path(smic_sheet), casme2_version=casme2_version,
                                   smic_layout=smic_layout, smic_apex=smic_apex, reference=Path(sheet))
