"""One labelled micro-expression clip, read from a dataset as it ships: the `Clip` every loader returns.

Every raw-dataset loader has the same shape:

    result = load_casme2(root, sheet, version="2019-07-01", class_map="casme2-5class")
    result.clips      # list[Clip], in sheet order
    result.skipped    # list[(clip name, reason)]: nothing is dropped without being named and counted
    result.warnings   # list[(clip name, message)]: sheet errors corrected, apexes estimated

and `LOADERS` maps a dataset name to its loader (resolved lazily, so importing this module stays light).

Frame numbering. The sheets give onset/apex/offset as the frame numbers that the dataset's file names
carry (CASME II `img46.jpg` is frame 46; SAMM `006_05562.jpg` and SMIC `image17581039.bmp` carry the
absolute frame number of the long recording). A Clip stores its frames as an ordered tuple of paths and
onset/apex/offset as 1-based positions in that tuple: position = (rank of the file whose number equals
the sheet's number among the clip's frames, in number order) + 1. So `clip.frames[clip.apex - 1]` is the
apex image whatever the dataset's numbering, and `clip.numbers[clip.apex - 1]` gives the sheet's number
back. Every number from onset to offset must be present, else the clip is skipped as missing frames.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from engines.errors import MestreamError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_TRAILING_NUMBER = re.compile(r"(\d+)$")

APEX_FROM_SHEET = "sheet"


@dataclass(frozen=True)
class Clip:
    dataset: str  # "casme2", "samm", "smic", "mmew", "casme3"
    subject: str  # LOSO unit as the composite names it: "sub01", "006", "s01", "spNO.1", "S01"
    name: str  # clip name, unique within the dataset: "EP02_01f", "006_1_2", "s1_ne_01", "a_355"
    frames: tuple[Path, ...]  # the clip's frame images in frame-number order
    onset: int  # 1-based position in `frames` (see the module docstring)
    apex: int
    offset: int
    action_units: tuple[str, ...]  # normalised: ("AU4", "R12", "L2/R2"); sheets.parse_action_units
    action_units_raw: str  # the sheet's cell as text: "4+R12", "L2 or R2"
    emotion: str  # as in the sheet: "happiness", "Anger", "negative"
    label: int  # index into class_map's classes
    class_map: str  # "casme2-5class", "megc2019-3class", ...
    apex_source: str = APEX_FROM_SHEET  # or how it was estimated, e.g. "middle frame (SMIC has no apex)"
    numbers: tuple[int, ...] = ()  # the frame number each entry of `frames` carries in its file name

    @property
    def uid(self) -> str:
        """subject_name: unique over a dataset and the key the MEGC2019 composite uses ("sub01_EP02_01f")."""
        return f"{self.subject}_{self.name}"

    def frame(self, position: int) -> Path:
        """The image at a 1-based position (clip.frame(clip.apex) is the apex image)."""
        return self.frames[position - 1]


@dataclass(frozen=True)
class LoadResult:  # frozen: loaders fill these lists in place, nobody swaps them
    clips: list[Clip] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (clip name, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (clip name, what was corrected/estimated)

    def summary(self) -> str:
        return f"{len(self.clips)} clips, {len(self.skipped)} skipped, {len(self.warnings)} warnings"

    def extend(self, other: LoadResult) -> None:
        self.clips.extend(other.clips)
        self.skipped.extend(other.skipped)
        self.warnings.extend(other.warnings)


class SkipClip(Exception):
    """This clip cannot be loaded; the message is the reason recorded in LoadResult.skipped."""


# ---- class mappings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMap:
    name: str
    classes: tuple[str, ...]
    by_emotion: dict[str, int]  # lower-case sheet emotion -> class index; emotions not here are skipped

    def label_of(self, emotion: str) -> int:
        key = emotion.strip().lower()
        if key not in self.by_emotion:
            raise SkipClip(f"emotion {emotion!r} is not a class of {self.name} ({', '.join(self.classes)})")
        return self.by_emotion[key]


def _class_map(name: str, classes: tuple[str, ...], groups: dict[str, tuple[str, ...]] | None = None) -> ClassMap:
    groups = groups or {c: (c,) for c in classes}
    return ClassMap(name, classes, {e: classes.index(c) for c, emotions in groups.items() for e in emotions})


_MEGC = ("negative", "positive", "surprise")  # label order of combined_3class_gt.csv: 0, 1, 2

# (dataset, class map name) -> mapping. The MEGC2019 composite groups each source's emotions its own way
# (challenge guideline): CASME II negative = disgust + repression, SAMM negative = anger, contempt,
# disgust, fear, sadness; "others" (and CASME II fear/sadness) are not in the composite.
CLASS_MAPS: dict[tuple[str, str], ClassMap] = {
    ("casme2", "casme2-5class"): _class_map("casme2-5class", ("happiness", "surprise", "disgust", "repression", "others")),
    ("casme2", "casme2-7class"): _class_map(
        "casme2-7class", ("happiness", "surprise", "disgust", "repression", "sadness", "fear", "others")),
    ("casme2", "megc2019-3class"): _class_map(
        "megc2019-3class", _MEGC, {"negative": ("disgust", "repression"), "positive": ("happiness",),
                                   "surprise": ("surprise",)}),
    ("samm", "samm-5class"): _class_map("samm-5class", ("happiness", "surprise", "anger", "contempt", "other")),
    ("samm", "samm-8class"): _class_map(
        "samm-8class", ("happiness", "surprise", "anger", "contempt", "disgust", "fear", "sadness", "other")),
    ("samm", "megc2019-3class"): _class_map(
        "megc2019-3class", _MEGC, {"negative": ("anger", "contempt", "disgust", "fear", "sadness"),
                                   "positive": ("happiness",), "surprise": ("surprise",)}),
    ("smic", "smic-3class"): _class_map("smic-3class", _MEGC),
    ("smic", "megc2019-3class"): _class_map("megc2019-3class", _MEGC),
    # MMEW: the order of HTNet's 1-based `label` column minus one (happiness 1 ... anger 6)
    ("mmew", "mmew-6class"): _class_map("mmew-6class", ("happiness", "surprise", "sadness", "disgust", "fear", "anger")),
    ("mmew", "mmew-5class"): _class_map("mmew-5class", ("happiness", "surprise", "sadness", "disgust", "fear")),
    # CAS(ME)^3 part A: HTNet's label_for_7 minus one (happy 1 ... anger 6), "others" last; label_for_3
    ("casme3", "casme3-7class"): _class_map(
        "casme3-7class", ("happy", "surprise", "sad", "disgust", "fear", "anger", "others")),
    ("casme3", "casme3-6class"): _class_map("casme3-6class", ("happy", "surprise", "sad", "disgust", "fear", "anger")),
    ("casme3", "casme3-3class"): _class_map(
        "casme3-3class", _MEGC, {"negative": ("disgust", "fear", "anger", "sad"), "positive": ("happy",),
                                 "surprise": ("surprise",)}),
}


def class_map(dataset: str, name: str) -> ClassMap:
    """The named mapping for a dataset; a MestreamError lists the valid names."""
    found = CLASS_MAPS.get((dataset, name))
    if found is None:
        valid = [n for d, n in CLASS_MAPS if d == dataset]
        raise MestreamError(f"class map {name!r} is not defined for {dataset}; expected one of {', '.join(valid)}")
    return found


# ---- frames on disk -----------------------------------------------------------------------------------


def numbered_frames(folder: Path) -> dict[int, Path]:
    """Frame number -> image, from the digits ending each image's file name ("img46", "006_05562", "image0123")."""
    if not folder.is_dir():
        raise SkipClip(f"clip folder {folder} does not exist")
    index: dict[int, Path] = {}
    for path in folder.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = _TRAILING_NUMBER.search(path.stem)
        if not match:
            continue
        number = int(match.group(1))
        if number in index:
            raise SkipClip(f"clip folder {folder} holds two images numbered {number} "
                           f"({index[number].name}, {path.name})")
        index[number] = path
    if not index:
        raise SkipClip(f"clip folder {folder} has no numbered images ({', '.join(IMAGE_SUFFIXES)})")
    return index


def check_order(onset: int | None, apex: int | None, offset: int | None) -> None:
    """onset <= apex <= offset, all present; raises SkipClip naming the problem."""
    if onset is None or offset is None:
        raise SkipClip(f"onset {onset!r} / offset {offset!r} are not frame numbers")
    if onset > offset:
        raise SkipClip(f"onset {onset} is after offset {offset}")
    if apex is not None and not onset <= apex <= offset:
        raise SkipClip(f"apex {apex} is outside onset {onset} .. offset {offset}")


def locate(index: dict[int, Path], onset: int, apex: int, offset: int, folder: Path,
           window_only: bool = False) -> tuple[tuple[Path, ...], tuple[int, ...], tuple[int, int, int]]:
    """The clip's frames and the 1-based positions of onset/apex/offset in them.

    All numbers onset..offset must be in `index`. `window_only` keeps just onset..offset (for datasets
    whose folder is a whole recording shared by several clips, as CAS(ME)^3); otherwise every frame of
    the folder is kept, in number order.
    """
    missing = [n for n in range(onset, offset + 1) if n not in index]
    if missing:
        lo, hi = min(index), max(index)
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise SkipClip(f"missing frames: {folder} has no frame {missing[0]}{more} (it holds {lo}..{hi}; "
                       f"the sheet needs {onset}..{offset})")
    numbers = tuple(range(onset, offset + 1)) if window_only else tuple(sorted(index))
    position = {n: i + 1 for i, n in enumerate(numbers)}
    return tuple(index[n] for n in numbers), numbers, (position[onset], position[apex], position[offset])


class FolderCache:
    """numbered_frames() once per folder: CAS(ME)^3 and SMIC-E clips share recording folders."""

    def __init__(self) -> None:
        self._found: dict[Path, dict[int, Path] | SkipClip] = {}

    def frames(self, folder: Path) -> dict[int, Path]:
        if folder not in self._found:
            try:
                self._found[folder] = numbered_frames(folder)
            except SkipClip as exc:
                self._found[folder] = exc
        found = self._found[folder]
        if isinstance(found, SkipClip):
            raise SkipClip(str(found))
        return found


@dataclass(frozen=True)
class SheetEntry:
    """One clip as the sheet states it, before its frames are looked up."""

    dataset: str
    subject: str
    name: str
    folder: Path  # relative to the dataset root, in the dataset's own layout
    onset: int  # frame numbers as the file names carry them
    apex: int | None  # None where the sheet has none (SMIC)
    offset: int
    action_units_raw: str
    emotion: str
    line: int  # sheet line, for messages
    apex_source: str = APEX_FROM_SHEET  # or how the loader filled an apex the sheet lacks

    @property
    def uid(self) -> str:
        return f"{self.subject}_{self.name}"


def not_frame_numbers(row, columns: tuple[str, str, str]) -> str:
    """Why a sheet row (sheets.Row) is skipped when its onset/apex/offset cells are not all frame numbers."""
    onset, apex, offset = (row[c] for c in columns)
    return f"line {row.line}: onset/apex/offset {onset!r}/{apex!r}/{offset!r} are not frame numbers"


def resolve(entries: list[SheetEntry], root: Path, cmap: ClassMap, result: LoadResult, window_only: bool = False,
            estimate_apex=None) -> None:
    """Look up each entry's frames under `root` and append a Clip, or a (name, reason) to result.skipped.

    `estimate_apex(frames, onset_pos, offset_pos) -> (apex_pos, how)` fills an apex the sheet lacks.
    """
    from trainer.data.sheets import parse_action_units

    cache = FolderCache()
    for entry in entries:
        try:
            label = cmap.label_of(entry.emotion)
            check_order(entry.onset, entry.apex, entry.offset)
            folder = root / entry.folder
            apex_number = entry.offset if entry.apex is None else entry.apex  # placeholder until estimated
            frames, numbers, (onset, apex, offset) = locate(
                cache.frames(folder), entry.onset, apex_number, entry.offset, folder, window_only)
            apex_source = entry.apex_source
            if entry.apex is None:
                if estimate_apex is None:
                    raise SkipClip("the sheet gives no apex frame")
                apex, apex_source = estimate_apex(frames, onset, offset)
                result.warnings.append((entry.uid, f"apex frame {numbers[apex - 1]} estimated: {apex_source}"))
        except SkipClip as exc:
            result.skipped.append((entry.uid, f"line {entry.line}: {exc}"))
            continue
        result.clips.append(Clip(
            dataset=entry.dataset, subject=entry.subject, name=entry.name, frames=frames, onset=onset, apex=apex,
            offset=offset, action_units=parse_action_units(entry.action_units_raw),
            action_units_raw=entry.action_units_raw, emotion=entry.emotion, label=label, class_map=cmap.name,
            apex_source=apex_source, numbers=numbers))


def check_root(root: Path, dataset: str, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise MestreamError(f"{dataset} frames root {root} is not a folder; expected the folder holding {layout}")
    return root


# ---- registry -----------------------------------------------------------------------------------------

# dataset name -> "module:function"; every function is load_<dataset>(root, sheet, ...) -> LoadResult
LOADERS: dict[str, str] = {
    "casme2": "trainer.data.casme2:load_casme2",
    "samm": "trainer.data.samm:load_samm",
    "smic": "trainer.data.smic:load_smic",
    "mmew": "trainer.data.mmew:load_mmew",
    "casme3": "trainer.data.casme3:load_casme3",
    "megc2019-frames": "trainer.data.composite:load_megc2019_frames",  # ROOT/casme2, ROOT/samm, ROOT/smic
}


def get_loader(dataset: str):
    """The load_<dataset> function registered under `dataset`."""
    target = LOADERS.get(dataset)
    if target is None:
        raise MestreamError(f"unknown dataset {dataset!r}; expected one of {', '.join(LOADERS)}")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


# ---- from clips to training samples -------------------------------------------------------------------


def parse_loader_options(dataset: str, pairs: list[str]) -> dict[str, str]:
    """["version=2019-07-01"] -> {"version": "2019-07-01"}, checked against load_<dataset>'s keyword arguments."""
    import inspect

    loader = get_loader(dataset)
    params = inspect.signature(loader).parameters
    accepted = [n for n in params if n not in ("root", "sheet", "class_map_name")]
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in accepted:
            raise MestreamError(f"loader option {pair!r} is not KEY=VALUE with KEY one of {', '.join(accepted) or '(none)'} "
                                f"for {dataset}; e.g. --loader-option {accepted[0] if accepted else 'key'}=...")
        options[key.strip()] = value.strip()
    missing = [n for n in accepted if params[n].default is inspect.Parameter.empty and n not in options]
    if missing:
        module = get_loader(dataset).__module__.replace(".", "/")
        raise MestreamError(f"{dataset} needs --loader-option {missing[0]}=VALUE (see {module}.py), "
                            "e.g. version=2019-07-01 for the CASME II coding sheet of 2019-07-01")
    return options


def loader_keys(dataset: str) -> list[str]:
    """The keyword arguments load_<dataset> takes as --loader-option KEY=VALUE."""
    import inspect

    return [n for n in inspect.signature(get_loader(dataset)).parameters if n not in ("root", "sheet", "class_map_name")]


def options_for(dataset: str, pairs: list[str], datasets: list[str]) -> list[str]:
    """The --loader-option pairs meant for `dataset`, one of the raw `datasets` of a run: "DATASET:KEY=VALUE" goes
    to that dataset only, a bare "KEY=VALUE" to every one whose loader takes KEY."""
    mine = []
    for pair in pairs:
        key, _, value = pair.partition("=")
        target, colon, bare = key.partition(":")
        if colon:
            if target.strip() not in datasets:
                raise MestreamError(f"loader option {pair!r} names dataset {target.strip()!r}, which this run does not "
                                    f"read from frames ({', '.join(datasets) or 'none'}); e.g. --loader-option "
                                    f"{datasets[0] if datasets else 'casme2'}:KEY=VALUE")
            if target.strip() == dataset:
                mine.append(f"{bare.strip()}={value}")
        elif len(datasets) == 1 or key.strip() in loader_keys(dataset):
            mine.append(pair)
        elif not any(key.strip() in loader_keys(d) for d in datasets):
            raise MestreamError(f"loader option {pair!r}: no dataset of this run ({', '.join(datasets)}) takes "
                                f"{key.strip()!r}; e.g. --loader-option {datasets[0]}:{(loader_keys(datasets[0]) or ['key'])[0]}=...")
    return mine


def clip_spec(clip: Clip):
    """The clip as trainer.prep's ClipSpec: frame numbers as the file names carry them, name = uid."""
    from trainer.prep import ClipSpec

    return ClipSpec(name=clip.uid, subject=clip.subject, frames_dir=clip.frames[0].parent,
                    onset=clip.numbers[clip.onset - 1], apex=clip.numbers[clip.apex - 1],
                    offset=clip.numbers[clip.offset - 1], label=clip.emotion, action_units=clip.action_units_raw,
                    note="" if clip.apex_source == APEX_FROM_SHEET else f"apex: {clip.apex_source}")


def samples_from_clips(result: LoadResult, prep_dir: Path, workers: int = 1, progress: bool = True):
    """trainer.data.samples.Samples for these clips, made by `mestream prep`'s code (edge tracker + TV-L1 flow)
    and cached in prep_dir. Clips the loader skipped or prep could not make are in Samples.skipped."""
    import numpy as np

    from trainer.data.au_codes import describe_au_codes
    from trainer.data.samples import Samples
    from trainer.prep import PrepParams, prep_clips, read_prepared

    if not result.clips:
        raise MestreamError(f"no clip could be loaded ({len(result.skipped)} skipped, first: "
                            f"{result.skipped[0] if result.skipped else 'none'}); check --data against --labels")
    maps = {c.class_map for c in result.clips}
    cmap = next(m for (d, n), m in CLASS_MAPS.items() if n in maps and d == result.clips[0].dataset)
    specs = [clip_spec(c) for c in result.clips]
    report = prep_clips(specs, Path(prep_dir), PrepParams(), workers=workers, progress=progress)
    prepared = read_prepared(Path(prep_dir), specs)
    kept = [c for c in result.clips if c.uid in prepared]
    skipped = [f"{name}: {why}" for name, why in result.skipped]
    skipped += [f"{name}: {why}" for name, why in sorted(report.skipped.items())]
    if not kept:
        raise MestreamError(f"prep made no clip in {prep_dir} ({len(report.skipped)} skipped, first: "
                            f"{next(iter(report.skipped.items()), 'none')}); check the frames")
    return Samples(
        names=[c.uid for c in kept],
        subjects=[c.subject for c in kept],
        datasets=[c.dataset for c in kept],
        labels=np.asarray([c.label for c in kept], dtype=np.int64),
        flow=np.stack([prepared[c.uid]["flow"] for c in kept]).astype(np.float32),
        apex=np.stack([prepared[c.uid]["apex"] for c in kept]).astype(np.uint8),
        au_text=[describe_au_codes(c.action_units_raw) for c in kept],
        classes=list(cmap.classes),
        skipped=skipped,
    )


def load_training_samples(dataset: str, root: Path, sheet: Path, prep_dir: Path, class_map_name: str | None = None,
                          options: list[str] | tuple[str, ...] = (), workers: int = 1, progress: bool = True):
    """`mestream train --dataset <raw dataset>` (or `--add <raw dataset>`): load the clips from frames + sheet,
    prep them, as Samples."""
    import logging

    kwargs = parse_loader_options(dataset, list(options))
    if class_map_name is not None:
        kwargs["class_map_name"] = class_map_name
    result = get_loader(dataset)(Path(root), Path(sheet), **kwargs)
    log = logging.getLogger("mestream.data")
    for name, message in result.warnings:
        log.warning("%s: %s", name, message)
    log.info("%s: %s", dataset, result.summary())
    return samples_from_clips(result, prep_dir, workers=workers, progress=progress)
