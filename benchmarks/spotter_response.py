"""What the spotter sees of a micro-expression, per unit of its measured amplitude: real CASME II clips against
`mestream synth`'s planted ones.

For every real clip (spotting_real.py's "still" 30 fps videos, from its tracking cache) and every planted micro
event of the synthetic videos (spotting_tune.py's work folder, from its tracking cache), the spotter's meter
(edge/spotting/signal.py RegionMotion with the default SpotParams) scores the aligned crop just before the onset
against every crop up to the offset; the largest region score, over the face's eye distance on the flow grid, is
the response. Real amplitudes are benchmarks/real_motion.py's (--json), in synth's units (over
MEASURED_PER_PLANTED); synth amplitudes are what synth planted (its plan, replayed from the seed). Printed: the
median response / amplitude in amplitude bins, for each.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/real_motion.py --json /tmp/real_motion.json
    .venv/bin/python benchmarks/spotter_response.py --real-motion /tmp/real_motion.json \\
        --real-cache /tmp/real/cache --synth-work /tmp/tune2
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BINS = ((0.005, 0.011), (0.011, 0.017), (0.017, 0.026), (0.026, 0.05))


def response(meter, faces, before: int, last: int) -> float:
    """Largest region score from the crop at `before` to any crop up to `last`, in eye distances."""
    first = faces[before]
    marks = first.arrays["landmarks"]  # crop coordinates
    eye = float(np.linalg.norm(marks[33] - marks[263])) * meter.size / first.arrays["crop"].shape[0]
    a = meter.prepare(first.arrays["crop"])
    return max(float(meter.scores(a, meter.prepare(faces[j].arrays["crop"])).max()) for j in range(before + 1, last + 1)) / eye


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-motion", type=Path, required=True, help="benchmarks/real_motion.py --json output")
    parser.add_argument("--real-cache", type=Path, required=True, help="spotting_real.py's WORK/cache")
    parser.add_argument("--synth-work", type=Path, required=True, help="spotting_tune.py's WORK")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()

    from edge.perception.expression_motion import MEASURED_PER_PLANTED
    from edge.spotting.params import SpotParams
    from edge.spotting.signal import RegionMotion
    from edge.tools.synth import SynthParams, plan_events
    from trainer.spotting.features import load_tracked, track_video

    p = SpotParams()
    meter = RegionMotion(p.flow_size, p.patch, p.recompensate_px, p.refine_iters, (p.band_side, p.band_top, p.band_bottom))
    amplitude = {r["clip"]: r["amplitude"] / MEASURED_PER_PLANTED for r in json.loads(args.real_motion.read_text())["clips"]}
    real = []
    for path in sorted(args.real_cache.glob(f"*_still_{args.fps:g}_0.npz")):
        clip = path.name.split("_still")[0]
        if clip not in amplitude:
            continue
        video, extra = load_tracked(path, path.stem)
        onset, offset, _ = (int(v) for v in extra["truth"])
        real.append((amplitude[clip], response(meter, video.face_messages(), onset - 1, offset)))
    synth = []
    for video_path in sorted(args.synth_work.glob("*/*.avi")):
        seed = int(video_path.stem.rsplit("_", 1)[1])
        faces = track_video(video_path, args.synth_work / "cache").face_messages()
        planned = {ev.onset: ev.amplitude for ev in plan_events(SynthParams(seed=seed, fps=args.fps, seconds=40.0), len(faces))}
        with open(video_path.with_suffix(".csv"), newline="") as fh:
            for row in csv.DictReader(fh):
                onset = int(row["onset"])
                if row["kind"] == "micro" and onset in planned:
                    synth.append((planned[onset], response(meter, faces, onset - 1, int(row["offset"]))))
    print(f"{'amplitude (synth units)':24s} {'real: n':>8s} {'resp/amp':>9s} {'synth: n':>9s} {'resp/amp':>9s}")
    for lo, hi in BINS:
        cells = []
        for rows in (np.array(real), np.array(synth)):
            sel = (rows[:, 0] >= lo) & (rows[:, 0] < hi) if len(rows) else np.zeros(0, bool)
            cells.append((int(sel.sum()), float(np.median(rows[sel, 1] / rows[sel, 0])) if sel.any() else float("nan")))
        print(f"{lo:.3f}-{hi:.3f}{'':12s} {cells[0][0]:8d} {cells[0][1]:9.2f} {cells[1][0]:9d} {cells[1][1]:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
