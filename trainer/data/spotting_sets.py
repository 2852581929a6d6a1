"""Long-video spotting ground truth (CAS(ME)^2, SAMM-LV, CAS(ME)^3) as interval lists per video.

The official sheets (CAS(ME)^2code_final.xlsx, SAMM_LongVideos_V*_Release.xlsx) are not public; the
interval CSVs derived from them are, in two formats chosen explicitly by `fmt`:
    "lgsnet"  subject,video,type,type_idx,startFrame,endFrame,frame_num,length   (williamlee91/LGSNet)
    "auwgcn"  subject,video_name,start_frame,apex_frame,end_frame,type_idx,au    (xjtupanda/AUW-GCN)
type_idx 1 = macro, 2 = micro in both.

    truth = load_spotting_set(Path("casme2_annotation_357.csv"), fmt="lgsnet", dataset="cas(me)2")
    truth.videos["s15_0101"].intervals    # tuple[edge.spotting.metrics.Interval, ...], frames inclusive
    write_truth_csv(truth.videos["s15_0101"], Path("s15_0101.csv"))   # for mestream spot-eval --truth

Frame units. AUW-GCN's samm_new_25.csv holds SAMM-LV frame numbers divided by 8 (200 fps -> 25 fps:
LGSNet's 006_1 566..743 is 70..92 there). That is not visible in the file, so it is an explicit
argument: frame_step=8 says frame n of the file covers recording frames 8n .. 8n+7, and
`in_recording_frames()` maps intervals back (onset 8n, offset 8n+7: the widest interval consistent with
the file). Every other file has frame_step 1.

Video ids are normalised so that the two formats name a video alike: CAS(ME)^2 "s15_0101" (LGSNet
"15_0101disgustingteeth", AUW-GCN "casme_015_0101"), SAMM-LV "006_1" (AUW-GCN "samm_006_1"), CAS(ME)^3
"001_a". An apex of -1 or 0 (not annotated) becomes None. Rows that cannot be intervals (AUW-GCN's CAS(ME)^2 end_frame 0 = offset missing in the source;
onset after offset) are skipped and named; `missing_offset="apex"` keeps the first kind with offset = apex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from edge.spotting.metrics import Interval
from engines.errors import MestreamError
from engines.files import atomic_write
from trainer.data.sheets import cell_int, cell_text, read_table

FORMATS: dict[str, tuple[str, ...]] = {
    "lgsnet": ("subject", "video", "type_idx", "startFrame", "endFrame"),
    "auwgcn": ("subject", "video_name", "start_frame", "apex_frame", "end_frame", "type_idx"),
}
DATASETS: dict[str, float] = {"cas(me)2": 30.0, "samm-lv": 200.0, "cas(me)3": 30.0}  # recording fps
KIND_OF_TYPE = {1: "macro", 2: "micro"}
MISSING_OFFSET = ("skip", "apex")


@dataclass(frozen=True)
class SpottingVideo:
    subject: str
    video: str  # normalised id
    intervals: tuple[Interval, ...]  # in the file's frame units, sorted by onset
    frame_count: int | None = None  # LGSNet's frame_num (None where the file has none)
    action_units: tuple[str, ...] = ()  # AUW-GCN's au per interval, same order (raw strings)


@dataclass(frozen=True)
class SpottingSet:
    dataset: str
    fps: float  # of the file's frame units (recording fps / frame_step)
    frame_step: int
    videos: dict[str, SpottingVideo] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)

    def count(self, kind: str | None = None) -> int:
        return sum(1 for v in self.videos.values() for i in v.intervals if kind is None or i.kind == kind)

    def in_recording_frames(self) -> SpottingSet:
        """The same set in recording frame numbers (frame_step 1)."""
        if self.frame_step == 1:
            return self
        s = self.frame_step
        videos = {}
        for key, video in self.videos.items():
            intervals = tuple(Interval(i.onset * s, i.offset * s + s - 1, i.kind, None if i.apex is None else i.apex * s)
                              for i in video.intervals)
            count = None if video.frame_count is None else video.frame_count * s
            videos[key] = replace(video, intervals=intervals, frame_count=count)
        return SpottingSet(self.dataset, self.fps * s, 1, videos, list(self.skipped))


def video_id(dataset: str, subject: str, raw: str) -> str:
    """One name per video whichever CSV it comes from (see the module docstring)."""
    base = raw.replace("\\", "/").rstrip("/").split("/")[-1]
    if dataset == "cas(me)2":
        match = re.match(r"^(?:casme_)?0*(\d+)_(\d{4})", base)
        if match:
            return f"s{int(match.group(1)):02d}_{match.group(2)}"
        return base
    if dataset == "samm-lv":
        return base[5:] if base.startswith("samm_") else base
    return f"{subject}_{base}"


def load_spotting_set(path: Path, fmt: str, dataset: str, frame_step: int = 1,
                      missing_offset: str = "skip") -> SpottingSet:
    """The intervals of every video in an LGSNet- or AUW-GCN-format CSV (see the module docstring)."""
    if fmt not in FORMATS:
        raise MestreamError(f"spotting CSV format {fmt!r} is unknown; expected one of {', '.join(FORMATS)}")
    if dataset not in DATASETS:
        raise MestreamError(f"spotting dataset {dataset!r} is unknown; expected one of {', '.join(DATASETS)}")
    if frame_step < 1:
        raise MestreamError(f"frame_step {frame_step} is not a positive integer; 8 for samm_new_25.csv, else 1")
    if missing_offset not in MISSING_OFFSET:
        raise MestreamError(f"missing_offset {missing_offset!r}; expected one of {', '.join(MISSING_OFFSET)}")
    table = read_table(path, FORMATS[fmt], what=f"{fmt} spotting CSV", header_row=0)
    rows: dict[str, list[tuple[Interval, str]]] = {}
    subjects: dict[str, str] = {}
    counts: dict[str, int] = {}
    result = SpottingSet(dataset, DATASETS[dataset] / frame_step, frame_step)
    for row in table.rows:
        subject = cell_text(row["subject"])
        raw_video = cell_text(row["video"] if fmt == "lgsnet" else row["video_name"])
        key = video_id(dataset, subject, raw_video)
        if fmt == "lgsnet":
            onset, apex, offset = cell_int(row["startFrame"]), None, cell_int(row["endFrame"])
            au = ""
        else:
            onset, apex, offset = (cell_int(row[c]) for c in ("start_frame", "apex_frame", "end_frame"))
            au = cell_text(row["au"])
            if apex is not None and apex <= 0:  # SAMM-LV writes -1, CAS(ME)^2 0, where no apex was annotated
                apex = None
        kind = KIND_OF_TYPE.get(cell_int(row["type_idx"]) or 0)
        where = f"line {row.line}"
        if kind is None:
            result.skipped.append((key, f"{where}: type_idx {row['type_idx']!r} is not 1 (macro) or 2 (micro)"))
            continue
        if onset is None or offset is None:
            result.skipped.append((key, f"{where}: start/end {onset!r}/{offset!r} are not frame numbers"))
            continue
        if offset == 0 and apex is not None and apex >= onset:
            if missing_offset == "skip":
                result.skipped.append((key, f"{where}: end frame 0 (offset missing in the source sheet)"))
                continue
            offset = apex
        if onset > offset:
            result.skipped.append((key, f"{where}: onset {onset} is after offset {offset}"))
            continue
        if apex is not None and not onset <= apex <= offset:
            result.skipped.append((key, f"{where}: apex {apex} is outside onset {onset} .. offset {offset}"))
            continue
        rows.setdefault(key, []).append((Interval(onset, offset, kind, apex), au))
        subjects[key] = subject
        if fmt == "lgsnet" and cell_int(row["frame_num"]) is not None:
            counts[key] = cell_int(row["frame_num"])
    for key, found in rows.items():
        found.sort(key=lambda pair: (pair[0].onset, pair[0].offset))
        result.videos[key] = SpottingVideo(subjects[key], key, tuple(i for i, _ in found), counts.get(key),
                                           tuple(a for _, a in found))
    return result


def write_truth_csv(video: SpottingVideo, path: Path, first_frame: int = 1) -> None:
    """One video's intervals as a `mestream spot-eval --truth` CSV (edge.tools.synth's columns).

    spot-eval counts frames from 0 (the capture's seq), the CSVs from the recording's first image number
    (img1.jpg -> 1), so seq = frame number - first_frame. Written to a temporary file, then renamed.
    """
    import csv
    import io

    from edge.tools.synth import TRUTH_COLUMNS

    path = Path(path)
    if not path.parent.is_dir():
        raise MestreamError(f"truth folder {path.parent} does not exist; create it or pass another path")
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(TRUTH_COLUMNS)
    for interval, au in zip(video.intervals, video.action_units or ("",) * len(video.intervals)):
        apex = "" if interval.apex is None else interval.apex - first_frame
        writer.writerow([interval.onset - first_frame, apex, interval.offset - first_frame, interval.kind, au, ""])
    atomic_write(path, text.getvalue())
