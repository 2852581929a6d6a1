"""When does the steady aligner let go of its hold on real clips, and did the head move then?

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/align_hold.py [--set tune eval] [--jobs 2] \\
        [--json out.json]

Every shared CASME II clip (onset..offset frames, spotting_real.py's TUNE / EVAL subjects) is tracked frame by frame
with FaceMesh and edge/perception/align.py's SteadyAligner, primed on the onset frame as `mestream prep` does. On
every held frame it records the two hold tests side by side:

    shift   the median distance of all landmarks, mapped by the held transform, from where they were when the
            hold began (the aligner's test: it lets go when shift > move_px)
    anchors the mean distance of the six alignment anchors between the held transform and this frame's own fit
            (the aligner's test before 2026-12-06: it let go when anchors > move_px)

and, as the truth of a head move, how far the whole raw frame moved from the onset frame (translation ECC),
in crop pixels. It prints every frame at which either test exceeds move_px while the aligner holds, and counts
them: a frame where the anchors exceed move_px but the frame itself moved under 0.25 crop px is a hold that
only the landmarks' slide (a squint, a frown) would have broken.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

STILL_PX = 0.25  # a raw frame that moved less than this (crop px) from the onset: the head stood still
PRIME_FRAMES = 6  # as trainer/prep.py


def frame_shift(reference: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Translation (source px) of `image` against `reference` by ECC; nan where it does not converge."""
    import cv2

    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    try:
        _, warp = cv2.findTransformECC(reference, image, np.eye(2, 3, dtype=np.float32), cv2.MOTION_TRANSLATION,
                                       criteria, None, 5)
    except cv2.error:
        return np.array([np.nan, np.nan])
    return warp[:, 2].astype(np.float64)


def clip_holds(clip) -> dict:
    """Per frame of one clip: held, the two hold tests and the raw frame's move (crop px)."""
    import cv2

    from edge.perception.align import AlignParams, SteadyAligner
    from edge.perception.landmarks import FaceLandmarks

    frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in clip.frames]
    onset = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY).astype(np.float32)
    aligner = SteadyAligner(AlignParams(size=128))
    rows = []
    with FaceLandmarks() as finder:
        for _ in range(PRIME_FRAMES):
            aligner.update(finder.find(frames[0]))
        for k, image in enumerate(frames):
            points = finder.find(image)
            if points is None:
                continue
            was_held = not aligner.following
            step = aligner.update(points)
            per_px = np.linalg.norm(step.transform[:, :2], axis=0)  # crop px per source px along x and y
            moved = frame_shift(onset, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)) * per_px
            rows.append({"frame": k, "was_held": was_held, "held": bool(step.held), "shift": step.shift_px,
                         "anchors": step.deviation_px, "frame_moved": float(np.hypot(*moved))})
    return {"subject": clip.subject, "clip": clip.name, "frames": rows}


def main(argv: list[str] | None = None) -> int:
    import os

    from spotting_real import load_clips

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs="+", default=["tune", "eval"], choices=["tune", "eval"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    assets = os.environ.get("MESTREAM_ASSETS")
    if not assets:
        print("MESTREAM_ASSETS is not set; expected the shared assets folder, e.g. MESTREAM_ASSETS=../shared/assets")
        return 2
    from edge.perception.align import AlignParams

    move_px = AlignParams().move_px
    clips = [c for s in args.set for c in load_clips(Path(assets), s)]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(clip_holds, clips, chunksize=1)
    else:
        results = [clip_holds(c) for c in clips]
    print("| clip | frame | shift px | anchors px | frame moved px | held |\n|---|---|---|---|---|---|")
    counts = {"breaks": 0, "breaks_still": 0, "anchor_only": 0, "anchor_only_still": 0}
    squint_clips = set()  # clips with a held frame whose anchors alone would have let go, the frame still
    for r in results:
        for f in r["frames"]:
            if not f["was_held"] or max(f["shift"], f["anchors"]) <= move_px:
                continue
            still = f["frame_moved"] < STILL_PX
            if not f["held"]:
                counts["breaks"] += 1
                counts["breaks_still"] += still
            elif f["anchors"] > move_px:
                counts["anchor_only"] += 1
                counts["anchor_only_still"] += still
                if still:
                    squint_clips.add(f"{r['subject']}_{r['clip']}")
            print(f"| {r['subject']}_{r['clip']} | {f['frame']} | {f['shift']:.2f} | {f['anchors']:.2f} | "
                  f"{f['frame_moved']:.2f} | {'yes' if f['held'] else 'no'} |")
    held = [f for r in results for f in r["frames"] if f["was_held"] and f["held"]]
    q = {k: np.percentile([f[k] for f in held], [50, 90, 99]).round(2).tolist() for k in ("shift", "anchors")}
    print(f"\n{len(clips)} clips, {len(held)} held frames; shift p50/p90/p99 {q['shift']}, anchors {q['anchors']}")
    print(f"holds let go: {counts['breaks']} ({counts['breaks_still']} with the frame moved < {STILL_PX} px); "
          f"frames held whose anchors exceeded move_px: {counts['anchor_only']} "
          f"({counts['anchor_only_still']} with the frame moved < {STILL_PX} px, in {len(squint_clips)} clips: "
          f"{', '.join(sorted(squint_clips))})")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "quantiles": q, "clips": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
