"""Loader for the MEGC2019 composite (CASME II + SMIC + SAMM, 3 classes) in its standard preprocessed form.

Layout (HTNet / STSTNet release):
    DATA/STSNet_whole_norm_u_v_os/{sub}_{filename_o} .png   28x28 onset->apex flow, channels u, v, strain
    DATA/combined_datasets_whole/{imagename}                 224x224 apex crop
    LABELS.csv with columns dataset, sub, filename_o, label, imagename
The literal space before ".png" is part of the released names. A row whose image is missing or unreadable
is logged by name and skipped (the caller reports the count); a wrong path or a CSV without the needed
columns is a MestreamError.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from engines.errors import MestreamError
from trainer.data.samples import CLASSES, PARTS, Samples

log = logging.getLogger(__name__)

FLOW_DIR = "STSNet_whole_norm_u_v_os"
APEX_DIR = "combined_datasets_whole"
REQUIRED_COLUMNS = ("dataset", "sub", "filename_o", "label", "imagename")
FLOW_SIZE = 28
APEX_SIZE = 224


def flow_file_name(sub: str, filename_o: str) -> str:
    """The released flow PNG name; the space before the suffix is really there."""
    return f"{sub}_{filename_o} .png"


def _read_rows(labels_csv: Path) -> list[dict[str, str]]:
    if not labels_csv.is_file():
        raise MestreamError(f"labels CSV {labels_csv} does not exist; expected the MEGC2019 composite CSV "
                            "(e.g. annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv)")
    with open(labels_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise MestreamError(f"labels CSV {labels_csv} lacks column(s) {', '.join(missing)}; expected "
                                f"{', '.join(REQUIRED_COLUMNS)}; pass the MEGC2019 composite CSV")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    if not rows:
        raise MestreamError(f"labels CSV {labels_csv} has no rows; expected one row per clip")
    return rows


def _check_row(labels_csv: Path, line: int, row: dict[str, str]) -> int:
    if row["dataset"] not in PARTS:
        raise MestreamError(f"{labels_csv} line {line}: dataset {row['dataset']!r} is not one of "
                            f"{', '.join(PARTS)}; fix the CSV")
    try:
        label = int(row["label"])
    except ValueError:
        label = -1
    if not 0 <= label < len(CLASSES):
        raise MestreamError(f"{labels_csv} line {line}: label {row['label']!r} is not 0, 1 or 2 "
                            f"({', '.join(CLASSES)}); fix the CSV")
    return label


def _read_flow(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR
    if image is None or image.shape[:2] != (FLOW_SIZE, FLOW_SIZE):
        return None
    rgb = image[:, :, ::-1]  # PNG channel order is u, v, strain
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)


def _read_apex(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    if image.shape[:2] != (APEX_SIZE, APEX_SIZE):
        image = cv2.resize(image, (APEX_SIZE, APEX_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image[:, :, ::-1])


def load_megc2019(data_dir: Path | str, labels_csv: Path | str, au_sheets: Path | str | None = None) -> Samples:
    """Read every CSV row's flow and apex images; rows with a missing or unreadable file are skipped."""
    data_dir, labels_csv = Path(data_dir), Path(labels_csv)
    for sub in (FLOW_DIR, APEX_DIR):
        if not (data_dir / sub).is_dir():
            raise MestreamError(f"data folder {data_dir} has no {sub}/; expected the preprocessed MEGC2019 "
                                "composite (e.g. $MESTREAM_ASSETS/preprocessed/HTNet_MEGC2019_composite)")
    rows = _read_rows(labels_csv)
    au_codes = _load_au_codes(au_sheets) if au_sheets is not None else {}

    names, subjects, datasets, labels, flows, apexes, au_text, skipped = [], [], [], [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        label = _check_row(labels_csv, line, row)
        flow_path = data_dir / FLOW_DIR / flow_file_name(row["sub"], row["filename_o"])
        apex_path = data_dir / APEX_DIR / row["imagename"]
        flow = _read_flow(flow_path) if flow_path.is_file() else None
        apex = _read_apex(apex_path) if apex_path.is_file() else None
        bad = [str(p) for p, arr in ((flow_path, flow), (apex_path, apex)) if arr is None]
        if bad:
            for path in bad:
                log.warning("skipping %s: missing or unreadable file %s", row["imagename"], path)
            skipped.extend(bad)
            continue
        names.append(Path(row["imagename"]).stem)
        subjects.append(row["sub"])
        datasets.append(row["dataset"])
        labels.append(label)
        flows.append(flow)
        apexes.append(apex)
        au_text.append(au_codes.get((row["dataset"], row["sub"], row["filename_o"]), ""))
    if not names:
        raise MestreamError(f"no readable sample in {data_dir} for {labels_csv}; check that the folder "
                            "matches the CSV")
    return Samples(
        names=names,
        subjects=subjects,
        datasets=datasets,
        labels=np.asarray(labels, dtype=np.int64),
        flow=np.stack(flows).astype(np.float32),
        apex=np.stack(apexes).astype(np.uint8),
        au_text=au_text,
        classes=list(CLASSES),
        skipped=skipped,
    )


def _load_au_codes(au_sheets: Path | str) -> dict:
    au_sheets = Path(au_sheets)
    if not au_sheets.is_dir():
        raise MestreamError(f"AU sheets folder {au_sheets} does not exist; expected the folder of official "
                            "coding sheets (e.g. $MESTREAM_ASSETS/annotations)")
    try:
        from trainer.data.au_codes import load_au_codes
    except ModuleNotFoundError as exc:
        if exc.name != "trainer.data.au_codes":
            raise
        # The AU reader lands separately; without it the text stays empty and families that need it say so.
        log.warning("trainer.data.au_codes is not available: au_text left empty")
        return {}
    return load_au_codes(au_sheets)
