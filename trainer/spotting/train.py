"""Training, honest evaluation and export of the learned spotter (SOFTNet family).

    videos = load_synth_videos(Path("synth/"), FeatureSpec(), cache=Path(".cache"))
    report = train_spotter(videos, FeatureSpec(), SpotterRecipe(), protocol="lovo", out=Path("spotter.onnx"))

Protocol. Videos are grouped (leave-one-video-out: each video its own group; leave-one-subject-out: by
subject). Each fold trains a fresh network for the recipe's fixed epochs on the other groups, picks the
peak parameters (threshold, smoothing, merge gap) on ITS OWN training videos' scores, and spots the
held-out group once; micro / macro / overall counts are pooled over all folds (IoU >= 0.5). Nothing is
chosen by looking at a held-out video. The shipped model is then fitted on every video, and its peak
parameters are chosen on the pooled held-out scores of the folds (scores of videos each model did not
see, so they behave like new videos' scores); that choice never sees any evaluation video either.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.spotting.learned import (
    FAMILY,
    FEATURE_FORM,
    FLOW_ALGORITHM,
    INPUT_NAME,
    OUTPUT_NAME,
    FeatureSpec,
    PeakParams,
    adaptive_levels,
    runs_to_intervals,
    smooth_scores,
)
from edge.spotting.metrics import Counts, Interval, pool, score_video
from engines.errors import MestreamError
from engines.optional import require
from trainer.spotting.features import pseudo_labels, track_video, window_features

log = logging.getLogger(__name__)

PROTOCOLS = ("lovo", "loso")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.15, 0.91, 0.05))
SMOOTHS = (1, 3, 5)
ZS = (0.0, 3.0, 5.0)  # adaptive threshold: median + z * MAD of the last 3 s of scores (0 = fixed only)


@dataclass(frozen=True)
class SpotterRecipe:
    epochs: int = 10  # fixed (SOFTNet trains a fixed count too); never chosen on held-out videos
    batch: int = 64
    lr: float = 1e-3  # Adam
    hidden: int = 128
    seed: int = 0
    max_event_s: float = 4.0  # the stage's SpotParams.max_event_s: longer runs are closed

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or not self.lr > 0:
            raise MestreamError(f"recipe epochs={self.epochs} batch={self.batch} lr={self.lr}; expected positive values")
        if self.seed < 0:  # numpy's generators take only non-negative seeds
            raise MestreamError(f"--seed {self.seed} is negative; pass an integer >= 0")


@dataclass
class SpotVideo:
    name: str
    group: str  # subject, for leave-one-subject-out
    fps: float
    truth: list[Interval]
    segments: list[tuple[np.ndarray, np.ndarray]]  # (window starts, features) per stretch with a face
    labels: list[np.ndarray]  # pseudo-labels per segment

    @property
    def windows(self) -> int:
        return int(sum(len(s) for s, _ in self.segments))


def make_video(name: str, group: str, tracked, truth: list[Interval], spec: FeatureSpec) -> SpotVideo:
    segments = window_features(tracked, spec)
    k = spec.k(tracked.fps)
    labels = [pseudo_labels(starts, k, truth) for starts, _ in segments]
    return SpotVideo(name, group, tracked.fps, truth, segments, labels)


def load_synth_videos(folder: Path, spec: FeatureSpec, cache: Path | None = None) -> list[SpotVideo]:
    """Every VIDEO.mp4|avi in `folder` with its VIDEO.csv truth from `mestream synth`.

    The subject (for loso) is the name without its last "_" part: face_seed -> face.
    """
    from edge.tools.synth import read_truth

    folder = Path(folder)
    if not folder.is_dir():
        raise MestreamError(f"--videos {folder} is not a folder; expected a folder of `mestream synth` videos and CSVs")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.with_suffix(".csv").is_file())
    if not paths:
        raise MestreamError(f"no video with a truth CSV next to it in {folder}; make them with `mestream synth --out V.mp4 --truth V.csv`")
    out = []
    for p in paths:
        tracked = track_video(p, cache)
        out.append(make_video(p.stem, p.stem.rsplit("_", 1)[0], tracked, read_truth(p.with_suffix(".csv")), spec))
        log.info("%s: %d windows, %d truth intervals", p.stem, out[-1].windows, len(out[-1].truth))
    return out


def load_long_videos(dataset: str, videos: Path, labels: Path, spec: FeatureSpec, cache: Path | None = None,
                     fmt: str = "lgsnet", frame_step: int = 1) -> list[SpotVideo]:
    """CAS(ME)^2 ("casme2-lv") or SAMM-LV ("samm-lv") long videos with their interval CSV.

    `videos` holds one video file or frame folder per video, named as the dataset ships it; names are
    matched through trainer/data/spotting_sets.video_id. Truth frames are the file's, counted from 1 in
    the datasets (img1.jpg), so they are moved to 0-based frame numbers. Videos in the CSV without
    frames are listed and skipped.
    """
    from trainer.data.spotting_sets import load_spotting_set, video_id

    name = {"casme2-lv": "cas(me)2", "samm-lv": "samm-lv"}.get(dataset)
    if name is None:
        raise MestreamError(f"--dataset {dataset!r}; expected synth, casme2-lv or samm-lv")
    if not videos.is_dir():
        raise MestreamError(f"--videos {videos} is not a folder; expected the dataset's videos or frame folders")
    truth = load_spotting_set(labels, fmt=fmt, dataset=name, frame_step=frame_step).in_recording_frames()
    found: dict[str, Path] = {}
    for p in sorted(videos.rglob("*")):
        if p.is_dir() and any(c.suffix.lower() in (".jpg", ".png", ".bmp") for c in p.iterdir()) or \
                p.suffix.lower() in VIDEO_SUFFIXES:
            found.setdefault(video_id(name, p.parent.name, p.stem), p)
    out, missing = [], []
    for vid, entry in truth.videos.items():
        path = found.get(vid)
        if path is None:
            missing.append(vid)
            continue
        tracked = track_video(path, cache, fps=truth.fps if path.is_dir() else None)
        shifted = [Interval(max(0, i.onset - 1), max(0, i.offset - 1), i.kind, None if i.apex is None else max(0, i.apex - 1))
                   for i in entry.intervals]
        out.append(make_video(vid, entry.subject, tracked, shifted, spec))
    if missing:
        log.warning("%d videos of %s have no frames under %s and are skipped: %s", len(missing), labels, videos,
                    ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    if not out:
        raise MestreamError(f"none of the {len(truth.videos)} videos of {labels} was found under {videos}; "
                            "expected the dataset's video files or frame folders there")
    return out


# ---- training ----------------------------------------------------------------------------------------

def _stack(videos: list[SpotVideo]) -> tuple[np.ndarray, np.ndarray]:
    xs = [x for v in videos for _, x in v.segments]
    ys = [y for v in videos for y in v.labels]
    if not xs:
        raise MestreamError("no training windows: every training video is shorter than one window or has no face")
    return np.concatenate(xs), np.concatenate(ys)


def mirror(x: np.ndarray) -> np.ndarray:
    """The features of the mirrored face: the layout flips left-right and the horizontal flow changes sign."""
    out = x[..., ::-1].copy()
    out[:, 0] *= -1.0
    return out


def fit(videos: list[SpotVideo], spec: FeatureSpec, recipe: SpotterRecipe, seed: int):
    """A fresh SoftNet trained for recipe.epochs on the videos' windows (MSE to the pseudo-labels)."""
    torch = require("torch", "train")
    from trainer.spotting.model import SoftNet

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny model: a second thread costs more than it gives on a busy CPU
    rng = np.random.default_rng(seed)
    x, y = _stack(videos)
    model = SoftNet(spec.roi, recipe.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    losses = []
    for _ in range(recipe.epochs):
        model.train()
        order = rng.permutation(len(x))
        total = 0.0
        for b in range(0, len(order), recipe.batch):
            idx = order[b : b + recipe.batch]
            xb = x[idx]
            flip = rng.random(len(idx)) < 0.5
            xb[flip] = mirror(xb[flip])
            pred = model(torch.from_numpy(np.ascontiguousarray(xb)))[:, 0]
            loss = torch.nn.functional.mse_loss(pred, torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
    model.eval()
    return model, losses


def predict(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    torch = require("torch", "train")
    out = []
    with torch.no_grad():
        for b in range(0, len(x), batch):
            out.append(model(torch.from_numpy(np.ascontiguousarray(x[b : b + batch])))[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def spot(video: SpotVideo, scores: list[np.ndarray], spec: FeatureSpec, peaks: PeakParams, max_event_s: float) -> list[Interval]:
    """Intervals from per-segment window scores, exactly as the stage picks them."""
    k = spec.k(video.fps)
    out = []
    for (starts, _), s in zip(video.segments, scores):
        for iv in runs_to_intervals(smooth_scores(s, peaks.smooth), starts, k, peaks, video.fps, max_event_s):
            out.append(Interval(iv["onset"], iv["offset"], iv["kind"], iv["apex"]))
    return out


def score_all(videos, scores, spec, peaks, max_event_s) -> dict[str, Counts]:
    return pool(score_video(spot(v, s, spec, peaks, max_event_s), v.truth) for v, s in zip(videos, scores))


def choose_peaks(videos: list[SpotVideo], scores: list[list[np.ndarray]], spec: FeatureSpec, max_event_s: float) -> tuple[PeakParams, dict]:
    """Grid search of smoothing x adaptive z x merge gap x threshold for the best pooled overall F1 on these videos."""
    k = spec.k(videos[0].fps)
    # merge gaps up to 4k: a held macro-expression scores low while nothing moves between its rise and fall
    merges = sorted({0, k // 2, k, 2 * k, 4 * k})
    best: tuple[tuple, PeakParams, dict] | None = None
    for smooth in SMOOTHS:
        smoothed = [[smooth_scores(s, smooth) for s in per_video] for per_video in scores]
        for z in ZS:
            # the adaptive part alone (threshold -inf); each threshold below is a max with it
            bare = PeakParams(-1e9, smooth, 0, z=z)
            adaptive = [[adaptive_levels(x, bare, v.fps) for x in xs] for v, xs in zip(videos, smoothed)]
            for merge in merges:
                for min_windows in sorted({1, k // 2, k}):
                    for threshold in THRESHOLDS:
                        peaks = PeakParams(threshold, smooth, merge, z=z, min_windows=min_windows)
                        per = []
                        for v, xs, ls in zip(videos, smoothed, adaptive):
                            kv = spec.k(v.fps)
                            predicted = [Interval(iv["onset"], iv["offset"], iv["kind"], iv["apex"])
                                         for (starts, _), x, lv in zip(v.segments, xs, ls)
                                         for iv in runs_to_intervals(x, starts, kv, peaks, v.fps, max_event_s,
                                                                     np.maximum(lv, threshold))]
                            per.append(score_video(predicted, v.truth))
                        counts = pool(per)
                        # ties: higher threshold, no adaptation, less smoothing, shorter minimum: fewer, surer events
                        key = (round(counts["overall"].f1, 6), round(counts["micro"].f1, 6), threshold, -z, -smooth,
                               -min_windows)
                        if best is None or key > best[0]:
                            best = (key, peaks, counts)
    return best[1], {name: c.as_dict() for name, c in best[2].items()}


def _segment_scores(model, video: SpotVideo) -> list[np.ndarray]:
    return [predict(model, x) for _, x in video.segments]


def cross_validate(videos: list[SpotVideo], spec: FeatureSpec, recipe: SpotterRecipe, protocol: str) -> dict[str, Any]:
    """Held-out scores of every video, each from a model that never saw its group (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise MestreamError(f"--protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    groups = sorted({v.name if protocol == "lovo" else v.group for v in videos})
    if len(groups) < 2:
        raise MestreamError(f"{protocol} needs at least 2 {'videos' if protocol == 'lovo' else 'subjects'}; got {len(groups)}")
    held_scores: dict[str, list[np.ndarray]] = {}
    held_counts = []
    folds = []
    for f, g in enumerate(groups):
        test = [v for v in videos if (v.name if protocol == "lovo" else v.group) == g]
        train = [v for v in videos if v not in test]
        model, losses = fit(train, spec, recipe, seed=recipe.seed * 1000 + f)
        train_scores = [_segment_scores(model, v) for v in train]
        peaks, train_fit = choose_peaks(train, train_scores, spec, recipe.max_event_s)
        for v in test:
            held_scores[v.name] = _segment_scores(model, v)
            held_counts.append(score_video(spot(v, held_scores[v.name], spec, peaks, recipe.max_event_s), v.truth))
        folds.append({"held_out": g, "videos": [v.name for v in test], "peaks": peaks.to_json(),
                      "loss_first": round(losses[0], 5), "loss_last": round(losses[-1], 5),
                      "train_f1": train_fit["overall"]["f1"]})
        log.info("fold %d/%d (%s): peaks %s", f + 1, len(groups), g, peaks.to_json())
    pooled = pool(held_counts)
    return {"groups": groups, "folds": folds, "held_scores": held_scores,
            "pooled": {k: c.as_dict() for k, c in pooled.items()}}


def train_spotter(videos: list[SpotVideo], spec: FeatureSpec, recipe: SpotterRecipe, protocol: str, out: Path,
                  dataset: str = "synth", command: str = "") -> dict[str, Any]:
    """Cross-validate, fit the shipped model on every video, choose its peaks on held-out scores, export."""
    cv = cross_validate(videos, spec, recipe, protocol)
    held = [cv["held_scores"][v.name] for v in videos]
    peaks, held_fit = choose_peaks(videos, held, spec, recipe.max_event_s)
    model, losses = fit(videos, spec, recipe, seed=recipe.seed * 1000 + 999)
    fps = sorted({v.fps for v in videos})
    training = {
        "dataset": dataset,
        "videos": [v.name for v in videos],
        "samples": int(sum(v.windows for v in videos)),
        "subjects": len({v.group for v in videos}),
        "fps": fps,
        "recipe": dataclasses.asdict(recipe),
        "pseudo_label": "share of the window [i, i+k] an expression covers (SOFTNet), micro and macro",
        "loss": [round(v, 5) for v in losses],
    }
    scores = {"protocol": protocol, "metric": "IoU >= 0.5, counts pooled over folds", **cv["pooled"]}
    selection = {
        "peaks": peaks.to_json(),
        "how": "fixed epochs; per fold, peaks chosen on that fold's training videos; shipped peaks chosen by grid "
               "search (smoothing x adaptive z x merge x minimum run x threshold) for the best pooled overall F1 on the folds' held-out scores "
               "of the training videos; no evaluation video seen",
        "held_out_fit": held_fit,
    }
    artifact = export_spotter(model, spec, out, training=training, protocol=protocol, scores=scores, selection=selection)
    return {
        "artifact": str(out),
        "model_id": artifact.model_id,
        "protocol": protocol,
        "feature": spec.to_json(),
        "peaks": peaks.to_json(),
        "held_out_fit": held_fit,
        "cross_validation": {"pooled": cv["pooled"], "folds": cv["folds"]},
        "training": training,
        "command": command,
    }


# ---- export ------------------------------------------------------------------------------------------

def _feature_probe(rng: np.random.Generator, inputs) -> dict[str, np.ndarray]:
    """Features are flow in grid pixels: mostly within +-2, strain >= 0."""
    x = rng.normal(0.0, 1.0, inputs[0].shape).astype(np.float32)
    x[:, 2] = np.abs(x[:, 2])
    return {inputs[0].name: x}


def export_spotter(model, spec: FeatureSpec, out: Path, *, training: dict, protocol: str, scores: dict,
                   selection: dict, atol: float = 1e-4, seed: int = 0):
    """ONNX artifact (family "softnet", input "flow" (1, 3, roi, roi), output "score" (1, 1)), checked against ORT."""
    from engines.artifact import TensorInfo
    from trainer.export import export_artifact

    shape = (1, 3, spec.roi, spec.roi)
    return export_artifact(
        model,
        family=FAMILY,
        inputs=(TensorInfo(INPUT_NAME, shape, "float32", "u, v, strain of the flow from frame i to i+k in the brow/eye "
                           "and mouth regions", FEATURE_FORM),),
        outputs=(TensorInfo(OUTPUT_NAME, (1, 1), "float32", "apex score of the window [i, i+k]: share covered by an expression", ""),),
        classes=("apex",),
        out=out,
        flow={"algorithm": FLOW_ALGORITHM, "params": spec.to_json(), "form": FEATURE_FORM},
        training=training,
        protocol=protocol,
        scores=scores,
        selection=selection,
        atol=atol,
        seed=seed,
        probe=_feature_probe,
    )
