"""The live spotter on REAL micro-expressions: CASME II clips held still around them, per subject and pooled.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_real.py --work /tmp/real \\
        [--set eval] [--fps 200 30] [--protocol still drift] [--variant default] [--variant "z4:z=4"] \\
        [--plots DIR] [--json out.json] [--limit N]
    ... --set unseen [--dataset casme2|samm|smic --frames DIR [--sheet XLSX]]   (clips of other subjects)

Every shared clip of ../shared/assets/casme2_cropped/ (onset..offset frames at 200 fps, truth from the official
2014-05-08 CASME II sheet) becomes a test video (trainer/spotting/real_clips.py: framed at 640x480, held still
1 s before and after with the clip's own camera noise; protocol "drift" adds a slow head drift), at 200 fps and
resampled to 30 fps. Each video is tracked once by the live track stage (cached under WORK/cache), and its face
messages are replayed into the live spot stage with SpotParams(**variant).

Subjects are split once, here, into TUNE (choose parameters on these) and EVAL (report on these; never choose
on them). Reported per subject and pooled over clips: recall (the truth interval hit by a micro event with
IoU >= 0.5; pooled, also its 95% interval with the subjects drawn again), "any" (hit by an event of either
kind), extra events per clip (events not matching the truth: the target is at most 0.1), events outside the
truth (no overlap at all), onset, offset and apex errors in ms of the event that overlaps the truth most
(median, and median absolute), and the kind of that event. --plots draws the motion signal, threshold, truth
and events of every clip that was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Fixed before any spotter was tuned on real clips; 101 clips of 10 subjects, 84 of 9. Set "unseen" is every
# other subject of the data (CASME II subjects not shared here; every subject of SAMM and SMIC).
TUNE = ("sub02", "sub06", "sub07", "sub09", "sub13", "sub15", "sub17", "sub18", "sub20", "sub25")
EVAL = ("sub03", "sub05", "sub08", "sub11", "sub14", "sub16", "sub23", "sub24", "sub26")
SETS = ("tune", "eval", "unseen")
SHEET = "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx"
FRAMES = "casme2_cropped/CASME2_Cropped"


@dataclass(frozen=True)
class Source:
    """A dataset's clips: its loader's arguments, the rate its camera recorded at, and default paths under the assets."""
    rate: float
    sheet: str  # under the assets folder, unless --sheet
    frames: str | None  # under the assets folder, unless --frames (None: --frames is needed)


DATASETS = {
    "casme2": Source(200.0, SHEET, FRAMES),
    "samm": Source(200.0, "annotations/MouathAb_AnalyseMiE/SAMM_Micro_FACS_Codes_v2.xlsx", None),
    "smic": Source(100.0, "annotations/davidnvq_me_recognition/SMIC-HS-E_annotation.xlsx", None),  # SMIC-HS
}
CLIP_FPS = DATASETS["casme2"].rate


@dataclass
class ClipVideo:
    subject: str
    clip: str
    fps: float
    protocol: str
    truth: object  # Interval in the video's frames
    faces: list


def load_clips(assets: Path, set_name: str, dataset: str = "casme2", frames: Path | None = None,
               sheet: Path | None = None):
    """The clips of one set: every emotion, since spotting does not depend on it."""
    source = DATASETS[dataset]
    frames = frames if frames is not None else assets / source.frames
    sheet = sheet if sheet is not None else assets / source.sheet
    if dataset == "casme2":
        from trainer.data.casme2 import load_casme2

        clips = load_casme2(frames, sheet, "2014-05-08", "casme2-7class").clips
    elif dataset == "samm":
        from trainer.data.samm import load_samm

        clips = load_samm(frames, sheet, "samm-8class").clips
    else:
        from trainer.data.smic import load_smic

        clips = load_smic(frames, sheet).clips
    if set_name == "unseen":
        return [c for c in clips if dataset != "casme2" or c.subject not in TUNE + EVAL]
    return [c for c in clips if c.subject in {"tune": TUNE, "eval": EVAL}[set_name]]


def tracked(clip, fps: float, protocol_name: str, seed: int, cache: Path, clip_fps: float = CLIP_FPS) -> ClipVideo:
    """The clip's test video, tracked by the live track stage; cached as npz under `cache`."""
    import cv2

    from edge.spotting.metrics import Interval
    from trainer.spotting.features import load_tracked, save_tracked, track_frames
    from trainer.spotting.real_clips import ClipTruth, Protocol, compose

    rate = "" if clip_fps == CLIP_FPS else f"_from{clip_fps:g}"  # CASME II's caches keep their names
    target = cache / f"{clip.subject}_{clip.name}_{protocol_name}_{fps:g}_{seed}{rate}.npz"
    if target.is_file():
        video, extra = load_tracked(target, target.stem)
        truth = Interval(*(int(v) for v in extra["truth"][:2]), "micro", int(extra["truth"][2]))
    else:
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in clip.frames]
        # the clip's frames are onset..offset: positions are 1-based in clip.frames
        truth_in_clip = ClipTruth(clip.onset - 1, clip.apex - 1, clip.offset - 1)
        seed_here = seed * 100003 + hash_name(f"{clip.subject}_{clip.name}")
        composed = compose(frames, truth_in_clip, Protocol(protocol_name, seed=seed_here), fps, clip_fps)
        video = track_frames(target.stem, composed.frames, fps)
        truth = composed.truth
        cache.mkdir(parents=True, exist_ok=True)
        save_tracked(target, video, truth=np.array([truth.onset, truth.offset, truth.apex]))
    return ClipVideo(clip.subject, clip.name, fps, protocol_name, truth, video.face_messages())


def _track_only(clip, fps: float, protocol_name: str, seed: int, cache: Path, clip_fps: float) -> None:
    tracked(clip, fps, protocol_name, seed, cache, clip_fps)


def hash_name(text: str) -> int:
    """A stable small number from a name (Python's hash() changes between runs)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text)) % 100003


def spot(stage, faces, revised: bool = True) -> tuple[list, list, float]:
    """Intervals (with kinds), the stage's trace and its CPU ms per frame on these face messages."""
    from spotting_compare import replay

    events, cpu_ms = replay(stage, faces, revised)
    return events, list(getattr(stage, "trace", None) or []), cpu_ms


def score_clip(events: list, truth, fps: float) -> dict:
    from edge.spotting.metrics import IOU_HIT, iou

    ious = [iou(e, truth) for e in events]
    best = int(np.argmax(ious)) if events else None
    hit_any = best is not None and ious[best] >= IOU_HIT
    hit_micro = any(v >= IOU_HIT and e.kind == "micro" for e, v in zip(events, ious))
    row = {"hit": hit_micro, "hit_any": hit_any, "extra": len(events) - (1 if hit_any else 0),
           "outside": sum(1 for v in ious if v == 0.0), "events": [[e.onset, e.offset, e.kind] for e in events],
           "truth": [truth.onset, truth.offset], "kind": None, "onset_ms": None, "offset_ms": None,
           "apex_ms": None}
    if best is not None and ious[best] > 0:
        e = events[best]
        row.update(kind=e.kind, onset_ms=round((e.onset - truth.onset) * 1000.0 / fps, 1),
                   offset_ms=round((e.offset - truth.offset) * 1000.0 / fps, 1), iou=round(ious[best], 3))
        if e.apex is not None and truth.apex is not None:
            row["apex_ms"] = round((e.apex - truth.apex) * 1000.0 / fps, 1)
    return row


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    on = [r["onset_ms"] for r in rows if r["onset_ms"] is not None]
    off = [r["offset_ms"] for r in rows if r["offset_ms"] is not None]
    apex = [r["apex_ms"] for r in rows if r.get("apex_ms") is not None]
    kinds = [r["kind"] for r in rows if r["kind"] is not None]

    def med(v):
        return round(float(np.median(v)), 1) if v else None

    return {"clips": n, "recall": round(sum(r["hit"] for r in rows) / max(n, 1), 3),
            "recall_any": round(sum(r["hit_any"] for r in rows) / max(n, 1), 3),
            "extra_per_clip": round(sum(r["extra"] for r in rows) / max(n, 1), 3),
            "outside_per_clip": round(sum(r["outside"] for r in rows) / max(n, 1), 3),
            "onset_ms": med(on), "onset_abs_ms": med(np.abs(on).tolist() if on else []),
            "offset_ms": med(off), "offset_abs_ms": med(np.abs(off).tolist() if off else []),
            "apex_ms": med(apex), "apex_abs_ms": med(np.abs(apex).tolist() if apex else []),
            "micro_share": round(kinds.count("micro") / len(kinds), 3) if kinds else None}


def recall_interval(rows: list[dict], draws: int = 2000, level: float = 0.95, seed: int = 0) -> list[float]:
    """Pooled recall's percentile interval with the subjects drawn again, with replacement: with 9-10 subjects a
    figure moves by a few clips when a subject changes, far more than between two close spotter variants."""
    from trainer.metrics import percentile_interval, subject_draws

    names = list(dict.fromkeys(r["subject"] for r in rows))
    hits = np.array([sum(r["hit"] for r in rows if r["subject"] == s) for s in names], dtype=np.float64)
    clips = np.array([sum(1 for r in rows if r["subject"] == s) for s in names], dtype=np.float64)
    drawn = subject_draws(len(names), draws, seed)
    recalls = (drawn @ hits) / np.maximum(drawn @ clips, 1.0)
    return [round(v, 3) for v in percentile_interval(recalls, level)]


def plot_failures(path: Path, failures: list[tuple[ClipVideo, dict, list]], title: str) -> None:
    """One panel per missed clip: the spotter's signal and threshold, the truth and the events."""
    if not failures:
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from edge.tools.plots import save_png

    cols = 4
    rows = (len(failures) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(failures):]:
        ax.axis("off")
    for ax, (video, row, trace) in zip(axes.ravel(), failures):
        if trace:
            seq, s, thr = (np.array(v, dtype=float) for v in zip(*trace))
            t = seq / video.fps
            ax.plot(t, s, lw=0.8, color="tab:blue")
            ax.plot(t, np.where(np.isfinite(thr), thr, np.nan), lw=0.8, color="tab:red")
        on, off = row["truth"]
        ax.axvspan(on / video.fps, off / video.fps, color="tab:green", alpha=0.2)
        for a, b, kind in row["events"]:
            ax.axvspan(a / video.fps, b / video.fps, ymax=0.12, color="tab:orange" if kind == "micro" else "tab:purple")
        ax.set_title(f"{video.subject} {video.clip}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{title}: missed clips (blue signal, red threshold, green truth, orange micro / purple macro)",
                 fontsize=9)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def main() -> int:
    from spotting_tune import parse_variants

    from trainer.spotting.real_clips import PROTOCOLS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the tracking cache")
    parser.add_argument("--set", dest="sets", nargs="+", default=["eval"], choices=SETS,
                        help="tune / eval: this project's split of the shared CASME II subjects; unseen: every other subject")
    parser.add_argument("--dataset", default="casme2", choices=tuple(DATASETS),
                        help="whose clips (samm and smic: --frames is needed; smic is SMIC-HS at 100 fps)")
    parser.add_argument("--frames", type=Path, default=None, help="the dataset's frame folders (default: the shared CASME II)")
    parser.add_argument("--sheet", type=Path, default=None, help="its annotation sheet (default: the one under the assets)")
    parser.add_argument("--fps", nargs="+", type=float, default=None, help="default: the dataset's own rate and 30")
    parser.add_argument("--protocol", nargs="+", default=["still"], choices=PROTOCOLS)
    parser.add_argument("--variant", action="append", default=None, help='"name:key=value,..." of SpotParams; repeatable')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes that track the clips (the cache) in parallel")
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips per subject (quick looks)")
    parser.add_argument("--per-subject", action="store_true", help="print a line per subject")
    parser.add_argument("--plots", type=Path, default=None, help="folder for PNGs of the missed clips")
    parser.add_argument("--json", type=Path, default=None, help="write every figure and event as JSON")
    parser.add_argument("--as-published", action="store_true",
                        help="score every interval as the spotter published it, micro events a later macro revises included")
    args = parser.parse_args()
    source = DATASETS[args.dataset]
    if args.frames is None and source.frames is None:
        raise SystemExit(f"--dataset {args.dataset} needs --frames DIR, the folder of its clips' frames")
    if args.dataset != "casme2" and set(args.sets) != {"unseen"}:
        raise SystemExit(f"--set {' '.join(args.sets)} with --dataset {args.dataset}: tune and eval are CASME II subjects; "
                         "expected --set unseen")
    if args.assets is None and (args.frames is None or args.sheet is None):
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder, or give --frames and --sheet")
    if args.frames is None and not (Path(args.assets) / FRAMES).is_dir():
        raise SystemExit(f"{Path(args.assets) / FRAMES} does not exist; expected the shared assets folder (with {FRAMES})")
    args.fps = args.fps or [source.rate, 30.0]
    for fps in args.fps:
        if not 0 < fps <= source.rate:
            raise SystemExit(f"--fps {fps:g}; expected a rate in (0, {source.rate:g}], {args.dataset}'s own rate or less")
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)

    from edge.spotting import make_spotter
    from edge.spotting.params import SpotParams
    from engines.errors import MestreamError

    variants = parse_variants(args.variant)
    results: dict = {}
    print(f"{'variant':22s} {'set':4s} {'proto':5s} {'fps':>4s} {'clips':>5s} {'recall':>6s} {'any':>5s} {'extra':>5s} "
          f"{'outside':>7s} {'onset ms':>9s} {'offset ms':>9s} {'micro':>5s} {'CPU ms':>6s} {'recall 95%':>11s} {'|apex| ms':>9s}")
    for set_name in args.sets:
        try:
            clips = load_clips(Path(args.assets) if args.assets else Path("."), set_name, args.dataset, args.frames, args.sheet)
        except MestreamError as e:
            raise SystemExit(str(e)) from None
        if not clips:
            raise SystemExit(f"no clips of set {set_name!r} in {args.frames or Path(args.assets) / source.frames}; "
                             "expected subjects other than this project's tune and eval ones for --set unseen")
        if args.limit:
            clips = [c for s in dict.fromkeys(c.subject for c in clips) for c in [c for c in clips if c.subject == s][: args.limit]]
        for protocol in args.protocol:
            for fps in args.fps:
                cache = args.work / "cache"
                if args.jobs > 1:  # fill the cache in parallel; the spotter below runs in this process
                    from multiprocessing import Pool

                    with Pool(args.jobs) as pool:
                        pool.starmap(_track_only, [(c, fps, protocol, args.seed, cache, source.rate) for c in clips])
                videos = [tracked(c, fps, protocol, args.seed, cache, source.rate) for c in clips]
                for name, kw in variants.items():
                    rows, cpu, failures = [], [], []
                    for video in videos:
                        stage = make_spotter(SpotParams(**kw), record_trace=args.plots is not None)
                        events, trace, ms = spot(stage, video.faces, not args.as_published)
                        row = {"subject": video.subject, "clip": video.clip, **score_clip(events, video.truth, fps)}
                        rows.append(row)
                        cpu.append(ms)
                        if not row["hit"]:
                            failures.append((video, row, trace))
                    pooled = {**summary(rows), "recall_95": recall_interval(rows)}
                    per_subject = {s: summary([r for r in rows if r["subject"] == s]) for s in dict.fromkeys(r["subject"] for r in rows)}
                    cpu_ms = round(float(np.mean(cpu)), 3)
                    results.setdefault(name, {}).setdefault(set_name, {}).setdefault(protocol, {})[f"{fps:g}"] = {
                        "pooled": pooled, "per_subject": per_subject, "cpu_ms": cpu_ms, "clips": rows}
                    p = pooled
                    print(f"{name:22s} {set_name:4s} {protocol:5s} {fps:4g} {p['clips']:5d} {p['recall']:6.3f} "
                          f"{p['recall_any']:5.3f} {p['extra_per_clip']:5.2f} {p['outside_per_clip']:7.2f} "
                          f"{str(p['onset_ms']):>9s} {str(p['offset_ms']):>9s} {str(p['micro_share']):>5s} {cpu_ms:6.2f} "
                          f"{p['recall_95'][0]:5.3f}-{p['recall_95'][1]:5.3f} {str(p['apex_abs_ms']):>9s}", flush=True)
                    if args.per_subject:
                        for s, q in per_subject.items():
                            print(f"{'':22s} {s:>10s} {'':>4s} {q['clips']:5d} {q['recall']:6.3f} {q['recall_any']:5.3f} "
                                  f"{q['extra_per_clip']:5.2f} {q['outside_per_clip']:7.2f} {str(q['onset_ms']):>9s} "
                                  f"{str(q['offset_ms']):>9s} {str(q['micro_share']):>5s}")
                    if args.plots is not None:
                        plot_failures(args.plots / f"missed_{name}_{set_name}_{protocol}_{fps:g}.png", failures,
                                      f"{name} {set_name} {protocol} {fps:g} fps")
    if args.json is not None:
        args.json.write_text(json.dumps({"variants": variants, "dataset": args.dataset, "split": {"tune": TUNE, "eval": EVAL},
                                         "results": results},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
