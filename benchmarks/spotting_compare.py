"""Learned (SOFTNet) vs training-free spotter on the SAME synthetic long videos, side by side.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_compare.py --work /tmp/spotcmp \\
        [--artifact spotter.onnx] [--json compare.json]

1. Makes the videos with `mestream synth` (40 s, 30 fps) unless WORK already has them:
   training  evm_face seeds 101-104, casme2_style_demo seeds 101-102;
   evaluation  pyfeat_single_face (its neutral frames 7:16) seeds 201-202, casme2_sub01_EP02_01f seeds 201-202:
   other faces AND other seeds than the training videos. (Frames 0:20 were used until 2026-11-23, but the
   man starts smiling at frame 17 and moves his head over frames 0-7: looped, that unlisted smile came
   back every 1.3 s; `mestream synth` now refuses such a source.)
2. Without --artifact, trains the learned spotter on the training videos only (`mestream train-spotter`,
   leave-one-video-out; its peak threshold is chosen on the training videos' held-out scores).
3. Tracks every evaluation video once (capture -> track, the live stages; cached), replays the same face
   messages into both spot stages (edge/spotting/regional.py RegionalSpotter with its defaults, and
   edge/spotting/learned.py LearnedSpotter with the artifact), and scores both with the standard metric
   (IoU >= 0.5; counts pooled over the videos; micro, macro, overall).
The evaluation videos are never used to train or to choose anything. Synthetic expressions are cleaner
than real ones: expect real-data figures far lower (SOFTNet: 0.2022 overall F1 on CAS(ME)^2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from still_faces import STILL_SPANS  # noqa: E402

TRAIN = ([(f, STILL_SPANS[f], s) for f, seeds in (("evm_face.mp4", (101, 102, 103, 104)), ("casme2_style_demo.avi", (101, 102)))
          for s in seeds])
EVAL = [(f, STILL_SPANS[f], s) for f in ("pyfeat_single_face.mp4", "casme2_sub01_EP02_01f.avi") for s in (201, 202)]
SECONDS = 40


def _name(face: str, seed: int, span: str | None = None) -> str:
    return f"{Path(face).stem}_{span.replace(':', '-')}_{seed}" if span else f"{Path(face).stem}_{seed}"


def synth_video(assets: Path, face: str, span: str | None, seed: int, out: Path) -> Path:
    """`mestream synth` of one plan entry into `out` (its truth CSV beside it), unless both are there already."""
    from edge.cli import main

    if out.is_file() and out.with_suffix(".csv").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = ["-q", "synth", "--face", str(assets / "videos" / face), "--out", str(out), "--truth",
            str(out.with_suffix(".csv")), "--seconds", str(SECONDS), "--seed", str(seed), "--no-progress"]
    if span:
        argv += ["--source-frames", span]
    if main(argv) != 0:
        raise SystemExit(f"synth failed for {out}")
    return out


def make_videos(assets: Path, folder: Path, plan, suffix: str = ".mp4") -> list[Path]:
    return [synth_video(assets, face, span, seed, folder / f"{_name(face, seed, span)}{suffix}") for face, span, seed in plan]


def replay_messages(stage, faces) -> tuple[list, float]:
    """Every message the stage sends on these face messages, and its CPU time per frame (ms)."""
    from edge.stages.base import drain, feed

    stage.open()
    try:
        t0 = time.process_time()
        out = feed([stage], list(faces)) + drain([stage])
        cpu_ms = (time.process_time() - t0) * 1000.0 / max(1, len(faces))
    finally:
        stage.close()
    return out, cpu_ms


def replay(stage, faces, revised: bool = True) -> tuple[list, float]:
    """Intervals the stage spots on these face messages (those a later one revises left out, unless
    revised=False: edge.spotting.metrics.intervals_of), and its CPU time per frame (ms)."""
    from edge.spotting.metrics import intervals_of

    out, cpu_ms = replay_messages(stage, faces)
    return intervals_of(out, revised), cpu_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for videos, the tracking cache and the trained spotter")
    parser.add_argument("--artifact", type=Path, default=None, help="a softnet artifact to evaluate instead of training one")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    from edge.cli import main as cli
    from edge.spotting.learned import LearnedSpotter
    from edge.spotting.metrics import pool, score_video
    from edge.spotting.params import SpotParams
    from edge.spotting.regional import RegionalSpotter
    from edge.tools.synth import read_truth
    from trainer.spotting.features import track_video

    train_dir, eval_dir, cache = args.work / "train", args.work / "eval", args.work / "cache"
    make_videos(Path(args.assets), train_dir, TRAIN)
    make_videos(Path(args.assets), eval_dir, EVAL)
    artifact = args.artifact
    if artifact is None:
        run_dir = args.work / "spotter"
        t0 = time.time()
        if cli(["train-spotter", "--videos", str(train_dir), "--out", str(run_dir), "--cache", str(cache),
                "--epochs", str(args.epochs)]) != 0:
            raise SystemExit("train-spotter failed")
        print(f"trained in {time.time() - t0:.0f} s")
        artifact = run_dir / "spotter.onnx"
    per_video = {"regional": [], "learned": []}
    cpu = {"regional": [], "learned": []}
    rows = []
    for face, span, seed in EVAL:
        name = _name(face, seed, span)
        video = eval_dir / f"{name}.mp4"
        truth = read_truth(video.with_suffix(".csv"))
        tracked = track_video(video, cache)
        faces = tracked.face_messages()
        got = {"regional": replay(RegionalSpotter(), faces),
               "learned": replay(LearnedSpotter(SpotParams(method="learned", artifact=str(artifact))), faces)}
        row = {"video": name}
        for method, (predicted, ms) in got.items():
            cpu[method].append(ms)
            counts = score_video(predicted, truth)
            per_video[method].append(counts)
            row[method] = {k: c.as_dict() for k, c in counts.items()}
        rows.append(row)
    pooled = {m: {k: c.as_dict() for k, c in pool(v).items()} for m, v in per_video.items()}

    print(f"\n{len(EVAL)} evaluation videos ({', '.join(r['video'] for r in rows)}), IoU >= 0.5, counts pooled")
    print(f"{'':8s} | {'training-free (regional)':^32s} | {'learned (softnet)':^32s}")
    print(f"{'kind':8s} | {'TP':>4s} {'pred':>5s} {'truth':>5s} {'P':>5s} {'R':>5s} {'F1':>5s} | "
          f"{'TP':>4s} {'pred':>5s} {'truth':>5s} {'P':>5s} {'R':>5s} {'F1':>5s}")
    for kind in ("micro", "macro", "overall"):
        cells = []
        for m in ("regional", "learned"):
            c = pooled[m][kind]
            cells.append(f"{c['tp']:4d} {c['predicted']:5d} {c['truth']:5d} {c['precision']:5.3f} {c['recall']:5.3f} {c['f1']:5.3f}")
        print(f"{kind:8s} | {cells[0]} | {cells[1]}")
    cpu_ms = {m: round(sum(v) / len(v), 3) for m, v in cpu.items()}
    print(f"\nCPU per frame (spot stage alone, process time, same face messages): regional {cpu_ms['regional']:.2f} ms, "
          f"learned {cpu_ms['learned']:.2f} ms (ratio {cpu_ms['learned'] / max(cpu_ms['regional'], 1e-9):.2f})")
    print("\nper video, F1 micro / macro / overall (regional | learned):")
    for r in rows:
        cells = [" / ".join(f"{r[m][k]['f1']:.3f}" for k in ("micro", "macro", "overall")) for m in ("regional", "learned")]
        print(f"  {r['video']:32s} {cells[0]} | {cells[1]}")
    if args.json is not None:
        args.json.write_text(json.dumps({"artifact": str(artifact), "pooled": pooled, "cpu_ms_per_frame": cpu_ms, "videos": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
