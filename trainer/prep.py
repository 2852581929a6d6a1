"""Preprocessing from frames on disk: aligned crops, onset->apex flow in the standard form, apex crops, clips.

Training inputs are made by the edge's own code so that a model learns exactly what the live pipeline
feeds it: each clip's frames (onset to offset, in order) go through the track stage
(edge.stages.face_tracking: MediaPipe landmarks, steady alignment), and the onset and apex crops through
edge.perception.flow.flow_input (TV-L1 + optical strain, 28x28 u/v/strain).

One clip -> one file `OUT/<subject>/<name>.npz` with
    flow   (3, 28, 28) float32   u, v, strain in the STSTNet/HTNet PNG form (bytes / 255)
    apex   (A, A, 3) uint8 RGB   the apex frame aligned at apex_size (the texture models' input)
    onset_crop, apex_crop (S, S) uint8 grey   the aligned crops the flow was computed from
    clip   (T, S, S, 3) uint8 RGB   T aligned frames sampled uniformly from onset to offset (fusion3d)
    frames (3,) int64   onset, apex, offset frame numbers used
OUT/prep.json records the parameters; a second run with other parameters into the same folder is refused
(the cache would mix two inputs), a second run with the same ones skips the clips already done
(resumable). Files are written to a temporary name and renamed, so an interrupted run leaves no half file.
Clips that cannot be made (missing frames, no face, onset after offset) are skipped, named and counted.

Frames are found by the number at the end of the file name (`img46.jpg`, `reg_img46.jpg`, `006_05562.jpg`,
`image046.bmp`), so CASME II, SAMM, SMIC and CAS(ME)^3 folders all work.

    clips = [clip_spec(c) for c in load_casme2(root, sheet, version="2019-07-01").clips]   # trainer.data
    report = prep_clips(clips, Path("prep/casme2"), PrepParams(), workers=2)
"""

from __future__ import annotations

import csv
import json
import logging
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.messages import Message
from edge.perception.align import warp_crop
from edge.perception.flow import TVL1Params, flow_input, params_dict
from edge.stages.face_tracking import FaceTracking, TrackParams
from engines.errors import MestreamError
from engines.files import atomic_path, atomic_write

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
PREP_VERSION = 1  # bump when the npz content changes meaning; part of the cache key
PRIME_FRAMES = 6  # onset frame repeats fed to the tracker before the clip (see prep_clip)


@dataclass(frozen=True)
class ClipSpec:
    name: str  # unique clip id, e.g. "sub01_EP02_01f"
    subject: str  # LOSO unit, e.g. "sub01"
    frames_dir: Path  # folder holding the clip's frames
    onset: int  # frame numbers as in the file names
    apex: int
    offset: int
    label: str = ""  # emotion as in the sheet (kept for the caller; not used here)
    action_units: str = ""
    note: str = ""  # e.g. "apex missing in the sheet: midpoint used"


@dataclass(frozen=True)
class PrepParams:
    track: TrackParams = field(default_factory=lambda: TrackParams(detect_every=1))
    # the live flow preset: what `mestream export` records (trainer/export.py flow_description) and infer runs,
    # so training inputs are made as live ones; a cache made with another schedule is refused (_check_params)
    flow: TVL1Params = field(default_factory=TVL1Params)
    apex_size: int = 224  # side of the aligned RGB apex crop for texture models
    clip_frames: int = 8  # T of the resampled aligned clip (0 = none)

    def __post_init__(self) -> None:
        if not 28 <= self.apex_size <= 1024:
            raise MestreamError(f"apex_size={self.apex_size} is out of range; expected 28..1024 pixels, e.g. 224")
        if not 0 <= self.clip_frames <= 256:
            raise MestreamError(f"clip_frames={self.clip_frames} is out of range; expected 0 (none) .. 256")
        if self.track.size < 28:
            raise MestreamError(f"crop size {self.track.size} is under the 28x28 flow form; expected >= 28")

    def as_json(self) -> dict:
        return {
            "version": PREP_VERSION,
            # prep follows one face: the fields that only tell several faces apart change none of its crops, and
            # leaving them out keeps caches made before they existed valid
            "track": {k: v for k, v in asdict(self.track).items() if k not in ("max_faces", "forget_after")},
            "flow": params_dict(self.flow),
            "apex_size": self.apex_size,
            "clip_frames": self.clip_frames,
        }


class ClipError(MestreamError):
    """This clip cannot be prepared (the message says why); the run skips it and goes on."""


# ---- clip lists ------------------------------------------------------------------------------------

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_index(frames_dir: Path) -> dict[int, Path]:
    """Frame number -> image file, from the digits that end each image's file name."""
    if not frames_dir.is_dir():
        raise ClipError(f"frame folder {frames_dir} does not exist; expected the clip's frames there")
    index: dict[int, Path] = {}
    for path in frames_dir.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _TRAILING_NUMBER.search(path.stem)
        if m:
            index[int(m.group(1))] = path
    if not index:
        raise ClipError(f"frame folder {frames_dir} has no numbered images ({', '.join(IMAGE_SUFFIXES)})")
    return index


def csv_clips(path: Path) -> list[ClipSpec]:
    """Clips from a plain CSV: name, subject, frames_dir, onset, apex, offset [, label, action_units].

    A relative frames_dir is taken relative to the CSV's folder.
    """
    need = ("name", "subject", "frames_dir", "onset", "apex", "offset")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            missing = [n for n in need if n not in fields]
            if missing:
                raise MestreamError(f"clip list {path}: column {missing[0]!r} missing; expected columns {', '.join(need)}")
            clips = []
            for number, row in enumerate(reader, start=2):
                try:
                    onset, apex, offset = (int(row[k]) for k in ("onset", "apex", "offset"))
                except ValueError:
                    raise MestreamError(
                        f"clip list {path} line {number}: onset/apex/offset {row['onset']!r}/{row['apex']!r}/"
                        f"{row['offset']!r}; expected integers"
                    ) from None
                frames_dir = Path(row["frames_dir"])
                clips.append(
                    ClipSpec(row["name"], row["subject"], frames_dir if frames_dir.is_absolute() else path.parent / frames_dir,
                             onset, apex, offset, row.get("label", "") or "", row.get("action_units", "") or "")
                )
    except OSError as exc:
        raise MestreamError(f"clip list {path}: cannot read it ({exc.strerror}); pass an existing CSV") from None
    return clips


# ---- one clip ----------------------------------------------------------------------------------------


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(f"frame {path} cannot be decoded; expected a readable image")
    return image


def sample_frames(onset: int, offset: int, count: int) -> list[int]:
    """`count` frame numbers spread uniformly from onset to offset, both included (repeats when short)."""
    if count <= 0:
        return []
    if count == 1:
        return [onset]
    return [int(round(v)) for v in np.linspace(onset, offset, count)]


def prep_clip(spec: ClipSpec, params: PrepParams) -> dict[str, np.ndarray]:
    """Everything the trainer needs from one clip (see the module docstring). Raises ClipError."""
    if not spec.onset <= spec.apex <= spec.offset:
        raise ClipError(
            f"clip {spec.name}: onset {spec.onset}, apex {spec.apex}, offset {spec.offset} are out of order; "
            "expected onset <= apex <= offset"
        )
    index = frame_index(spec.frames_dir)
    wanted = sorted(set(sample_frames(spec.onset, spec.offset, params.clip_frames)) | {spec.onset, spec.apex})
    last = max(wanted)
    # the tracker sees every frame from onset on, in order, exactly as it would live
    sequence = [n for n in range(spec.onset, last + 1) if n in index]
    missing = [n for n in wanted if n not in index]
    if missing:
        lo, hi = min(index), max(index)
        raise ClipError(
            f"clip {spec.name}: frame {missing[0]} is not in {spec.frames_dir} (it holds frames {lo}..{hi}); "
            "check the sheet's frame numbers against the folder"
        )
    S = params.track.size
    stage = FaceTracking(params.track)
    stage.open()
    crops: dict[int, np.ndarray] = {}
    colour: dict[int, np.ndarray] = {}
    transforms: dict[int, np.ndarray] = {}
    apex_image = None
    try:
        # Live, the tracker has been running long before an onset; here it starts at the onset, and
        # FaceMesh's first frames on a new face are a few pixels off. Priming it on the onset frame
        # lets the steady hold settle first, so onset and apex crops share one held transform unless
        # the head really moved (which the flow then shows, as it would live).
        onset_image = _read_image(index[spec.onset])
        for seq in range(PRIME_FRAMES):
            stage.process(Message("frame", {"seq": seq, "t_capture_ns": seq}, {"image": onset_image}))
        for seq, number in enumerate(sequence, start=PRIME_FRAMES):
            image = onset_image if number == spec.onset else _read_image(index[number])
            face = stage.process(Message("frame", {"seq": seq, "t_capture_ns": seq}, {"image": image}))[-1]
            if number not in wanted:
                continue
            if not face.header["found"]:
                raise ClipError(f"clip {spec.name}: no face found in frame {number} ({index[number].name})")
            crops[number] = face.arrays["crop"]
            colour[number] = face.arrays["crop_color"] if "crop_color" in face.arrays else cv2.cvtColor(face.arrays["crop"], cv2.COLOR_GRAY2BGR)
            transforms[number] = np.array(face.header["transform"], np.float64)
            if number == spec.apex:
                apex_image = image
    finally:
        stage.close()
    flow = flow_input(crops[spec.onset], crops[spec.apex], params.flow)
    # the apex texture crop is warped from the source frame at its own size, not upsampled from S
    big = transforms[spec.apex] * (params.apex_size / S)
    apex = cv2.cvtColor(warp_crop(apex_image, big, params.apex_size), cv2.COLOR_BGR2RGB)
    clip = [cv2.cvtColor(colour[n], cv2.COLOR_BGR2RGB) for n in sample_frames(spec.onset, spec.offset, params.clip_frames)]
    return {
        "flow": flow.astype(np.float32),
        "apex": apex,
        "onset_crop": crops[spec.onset],
        "apex_crop": crops[spec.apex],
        "clip": np.stack(clip) if clip else np.zeros((0, S, S, 3), np.uint8),
        "frames": np.array([spec.onset, spec.apex, spec.offset], np.int64),
        "transforms": np.stack([transforms[spec.onset], transforms[spec.apex]]),
    }


# ---- many clips, cached ------------------------------------------------------------------------------


@dataclass
class PrepReport:
    done: list[str] = field(default_factory=list)  # made by this run
    cached: list[str] = field(default_factory=list)  # already on disk with the same parameters
    skipped: dict[str, str] = field(default_factory=dict)  # clip name -> why

    def summary(self) -> str:
        return f"{len(self.done)} prepared, {len(self.cached)} already cached, {len(self.skipped)} skipped"


def clip_path(out_dir: Path, spec: ClipSpec) -> Path:
    return out_dir / spec.subject / f"{spec.name}.npz"


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _work(job: tuple[ClipSpec, PrepParams, Path]) -> tuple[str, str | None]:
    spec, params, path = job
    try:
        arrays = prep_clip(spec, params)
    except ClipError as exc:
        return spec.name, str(exc)
    _save_atomic(path, arrays)
    return spec.name, None


def _check_params(out_dir: Path, params: PrepParams) -> None:
    record = out_dir / "prep.json"
    wanted = params.as_json()
    if record.exists():
        try:
            existing = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MestreamError(f"{record} is unreadable ({exc}); delete it or use a new output folder") from None
        if existing != wanted:
            diff = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
            raise MestreamError(
                f"{out_dir} holds clips made with other parameters ({', '.join(diff)} differ); "
                "use a new output folder or delete that one"
            )
        return
    atomic_write(record, json.dumps(wanted, indent=1))


def prep_clips(
    clips: list[ClipSpec], out_dir: Path, params: PrepParams, workers: int = 1, progress: bool = True
) -> PrepReport:
    """Prepare every clip not already in out_dir, over `workers` processes, with a progress bar."""
    if workers < 1:
        raise MestreamError(f"workers={workers}; expected an integer >= 1")
    names = [c.name for c in clips]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise MestreamError(f"clip name {dupes[0]!r} appears twice in the clip list; expected unique names")
    _check_params(out_dir, params)
    report = PrepReport()
    todo = []
    for spec in clips:
        path = clip_path(out_dir, spec)
        if path.exists():
            report.cached.append(spec.name)
        else:
            todo.append((spec, params, path))
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="prep", unit="clip", disable=not progress)
    try:
        if workers == 1 or len(todo) <= 1:
            results = map(_work, todo)
            for name, error in results:
                _record(report, name, error)
                bar.update(1)
        else:
            # spawn: MediaPipe starts threads, which a forked child must not inherit half-way
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                for future in as_completed([pool.submit(_work, job) for job in todo]):
                    _record(report, *future.result())
                    bar.update(1)
    finally:
        bar.close()
    return report


def _record(report: PrepReport, name: str, error: str | None) -> None:
    if error is None:
        report.done.append(name)
    else:
        report.skipped[name] = error
        log.warning("skipped %s", error)


def read_prepared(out_dir: Path, clips: list[ClipSpec]) -> dict[str, dict[str, np.ndarray]]:
    """The prepared arrays of those clips that are on disk, by clip name."""
    out = {}
    for spec in clips:
        path = clip_path(out_dir, spec)
        if path.exists():
            with np.load(path) as data:
                out[spec.name] = {k: data[k] for k in data.files}
    return out


def reframed_flow(out_dir: Path, subjects: list[str], names: list[str], window, params: PrepParams = PrepParams()) -> np.ndarray:
    """(N, 3, 28, 28) flow of prepared clips remade from their aligned crops re-cut to `window`: what the classify
    stage computes for an artifact whose metadata names that crop window (edge/stages/classify_input.py)."""
    from edge.perception.composite_framing import composite_flow_input

    flows = []
    for name, subject in zip(names, subjects):
        with np.load(out_dir / subject / f"{name}.npz") as d:
            flows.append(composite_flow_input(d["onset_crop"], d["apex_crop"], params.flow, 28, window))
    return np.stack(flows).astype(np.float32)
