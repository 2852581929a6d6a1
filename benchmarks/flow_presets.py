"""How far cheaper TV-L1 settings move the live recognition input, and what they save: measured side by side.

    MESTREAM_ASSETS=../shared/assets .venv/bin/python benchmarks/flow_presets.py \\
        --pairs-from $MESTREAM_ASSETS/videos/casme2_sub01_EP02_01f.avi --intervals-from /tmp/s200.avi --json out.json

Inputs are REAL aligned face crops made by the live tracker (edge/stages/face_tracking.py):
- `--pairs-from VIDEO`: onset = the first tracked frame, apex = every `--step`-th later frame (a real
  spontaneous micro-expression for the CASME II clip: the motion grows from nothing to the apex);
- `--intervals-from VIDEO`: the (onset, apex) crops of every interval the live spotter sends on that video
  (e.g. a `mestream synth` video at 200 fps): exactly what the infer stage gets.
For every pair, every preset runs in turn (interleaved, so machine load hits them alike), timed in CPU ms
(process time). Reported per preset: CPU ms per flow_input (median, p95), the mean absolute difference of its
(3, 28, 28) input from the reference preset's (mean and p95 over pairs, on the 0..1 scale), and with the
default artifact: how many predicted labels change and the largest probability change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.perception.flow import TVL1Params, flow_input  # noqa: E402

PRESETS = {
    "reference 128, 5x30": TVL1Params(),
    "128, 5x15": TVL1Params(iterations=15),
    "128, 3x15": TVL1Params(warps=3, iterations=15),
    "128, 3x10": TVL1Params(warps=3, iterations=10),
    "128, 2x15": TVL1Params(warps=2, iterations=15),
    "work 96, 5x30": TVL1Params(work_size=96),
    "work 96, 3x15": TVL1Params(work_size=96, warps=3, iterations=15),
    "work 64, 5x30": TVL1Params(work_size=64),
    "work 64, 5x15": TVL1Params(work_size=64, iterations=15),
    "work 64, 3x15": TVL1Params(work_size=64, warps=3, iterations=15),
    "work 48, 5x30": TVL1Params(work_size=48),
}


def tracked_crops(video: Path) -> list:
    """Every "face" message (found) the live tracker makes from the video, in order."""
    from edge.stages.base import run_chain
    from edge.stages.capture import Capture
    from edge.stages.face_tracking import FaceTracking

    faces = [m for m in run_chain(Capture(str(video), fast=True), [FaceTracking()]) if m.topic == "face"]
    return [f for f in faces if f.header.get("found")]


def growing_pairs(video: Path, step: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    faces = tracked_crops(video)
    first = faces[0]
    return [(f"{video.name}:{first.header['seq']}->{f.header['seq']}", first.arrays["crop"], f.arrays["crop"])
            for f in faces[step::step]]


def interval_pairs(video: Path, limit: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from edge.spotting.regional import RegionalSpotter

    spot = RegionalSpotter()
    spot.open()
    out = []
    for face in tracked_crops(video):
        for m in spot.process(face):
            if m.topic == "interval" and len(out) < limit:
                out.append((f"{video.name}:{m.header['onset']['seq']}->{m.header['apex']['seq']}", m.arrays["onset"], m.arrays["apex"]))
    spot.close()
    return out


def measure(pairs, artifact: Path | None, repeats: int) -> dict:
    engine = None
    if artifact is not None:
        from engines.base import open_engine

        engine = open_engine(artifact)
        [spec] = engine.input_spec()
    cpu = {name: [] for name in PRESETS}
    diffs = {name: [] for name in PRESETS}
    flips = {name: 0 for name in PRESETS}
    dprob = {name: 0.0 for name in PRESETS}
    for _label, onset, apex in pairs:
        inputs = {}
        for _ in range(repeats):
            for name, params in PRESETS.items():  # interleaved: every preset sees the same load
                c0 = time.process_time()
                inputs[name] = flow_input(onset, apex, params)
                cpu[name].append(1000 * (time.process_time() - c0))
        ref = inputs["reference 128, 5x30"]
        ref_probs = None
        if engine is not None:
            ref_probs = np.asarray(engine.infer({spec.name: ref.reshape(spec.shape)})["probs"]).reshape(-1)
        for name, x in inputs.items():
            diffs[name].append(float(np.abs(x - ref).mean()))
            if engine is not None:
                probs = np.asarray(engine.infer({spec.name: x.reshape(spec.shape)})["probs"]).reshape(-1)
                flips[name] += int(np.argmax(probs) != np.argmax(ref_probs))
                dprob[name] = max(dprob[name], float(np.abs(probs - ref_probs).max()))
    if engine is not None:
        engine.close()
    return {
        name: {
            "cpu_ms_p50": round(float(np.median(cpu[name])), 2),
            "cpu_ms_p95": round(float(np.percentile(cpu[name], 95)), 2),
            "mad_mean": round(float(np.mean(diffs[name])), 4),
            "mad_p95": round(float(np.percentile(diffs[name], 95)), 4),
            "label_changes": flips[name] if engine is not None else None,
            "max_prob_change": round(dprob[name], 4) if engine is not None else None,
            "params": {k: v for k, v in vars(PRESETS[name]).items()},
        }
        for name in PRESETS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs-from", type=Path, action="append", default=[], help="video: first frame vs every --step-th later frame")
    parser.add_argument("--step", type=int, default=2)
    parser.add_argument("--intervals-from", type=Path, action="append", default=[], help="video: the live spotter's intervals")
    parser.add_argument("--limit", type=int, default=40, help="intervals per video at most")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of every preset per pair")
    parser.add_argument("--artifact", type=Path, default=ROOT / "engines" / "default" / "mestream-default.onnx")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sets = {}
    for video in args.pairs_from:
        sets[f"growing pairs {video.name}"] = growing_pairs(video, args.step)
    for video in args.intervals_from:
        sets[f"intervals {video.name}"] = interval_pairs(video, args.limit)
    load = os.getloadavg()
    result = {"load_average_at_start": load, "sets": {}}
    for set_name, pairs in sets.items():
        r = measure(pairs, args.artifact, args.repeats)
        result["sets"][set_name] = {"pairs": len(pairs), "presets": r}
        print(f"\n{set_name}: {len(pairs)} pairs (load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} now)")
        print(f"{'preset':<22}{'CPU ms p50':>11}{'p95':>8}{'MAD mean':>10}{'MAD p95':>9}{'labels changed':>16}{'max dprob':>11}")
        for name, m in r.items():
            print(f"{name:<22}{m['cpu_ms_p50']:>11.1f}{m['cpu_ms_p95']:>8.1f}{m['mad_mean']:>10.4f}{m['mad_p95']:>9.4f}"
                  f"{m['label_changes'] if m['label_changes'] is not None else '-':>10}/{len(pairs):<5}{m['max_prob_change'] or 0:>11.3f}")
    if args.json is not None:
        from engines.files import atomic_write

        atomic_write(args.json, json.dumps(result, indent=2, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
