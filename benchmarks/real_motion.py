"""How far real micro-expressions move, in `mestream synth`'s units (issue 17): CASME II at 200 fps.

For each shared CASME II clip (onset..offset frames of the Cropped release, labelled by the 2014-05-08 coding
sheet) this measures:

- amplitude: the peak local displacement from the onset frame to the apex frame, divided by the distance of
  the outer eye corners (FaceMesh 33 and 263 on the onset frame, as edge/tools/synth.py sizes its motions).
  Dense flow at the crop's full resolution (the project's TV-L1, edge/perception/flow.py, live preset);
  the head's motion removed by a robust affine fit over the face; the flow box-filtered over PATCH_EYE
  eye distances (about an action unit; the vector, so that the flow's pixel noise averages out where
  a real motion, coherent over the patch, does not); then the largest magnitude over the face, the eye
  openings left out (gaze is not an action unit). `peak_at` names the face part nearest to it;
- floor: the same measure from the onset frame to the frame FLOOR_STEP frames later (10 ms: no expression
  gets anywhere in that time), so each amplitude can be read against what noise alone gives;
- at_offset: the same from the onset to the offset frame, where the sheet says the expression is over: at
  most what slow drift over the clip's own time (a head turning, not affine) adds, the expression's rest included;
- duration (onset->offset) and rise (onset->apex) in seconds at 200 fps;
- camera noise: the robust std of the grey-level difference of consecutive frames, / sqrt 2, per clip
  (median over the first NOISE_PAIRS pairs).

A check in synth's own units: an action unit of synth (edge.tools.synth.plant, the AUs taken in turn) planted at
CHECK_AMP on the onset+FLOOR_STEP frame of every clip (real noise included) is measured against the onset
frame the same way. measured / planted (`check`) says how much of a synth amplitude this measure reports;
amplitude / the median check is the amplitude synth would have to plant to be measured like the real
clip (`synth_amp`).

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/real_motion.py [--json OUT]

CASME II is research-only: it is read in place, nothing of it is written but the figures.
Results: benchmarks/results/real_motion.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.perception.expression_motion import PATCH_EYE, face_mask, peak_displacement

FPS = 200.0  # CASME II
SHEET = "annotations/davidnvq_me_recognition/CASME2-coding-20140508.xlsx"
FRAMES = "casme2_cropped/CASME2_Cropped"
FLOOR_STEP = 2  # frames after the onset for the noise floor (10 ms)
NOISE_PAIRS = 4  # consecutive frame pairs from the onset for the camera noise
CHECK_AMP = 0.01  # / eye distance, near the real median
# face parts by FaceMesh landmarks, to say where each clip's peak is (the nearest landmark's part)
PARTS = {
    "brow": (70, 63, 105, 66, 107, 336, 296, 334, 293, 300),
    "eye": (33, 133, 145, 159, 263, 362, 374, 386),
    "nose": (1, 4, 129, 358, 168),
    "mouth": (0, 17, 13, 14, 61, 291, 39, 269, 181, 405),
    "chin": (199, 175, 152),
    "cheek": (50, 280, 205, 425, 187, 411),
}


@dataclass(frozen=True)
class ClipMotion:
    clip: str
    action_units: str  # the sheet's, to set against peak_at
    eye_px: float
    amplitude: float  # / eye distance, onset -> apex
    peak_at: str  # face part nearest to the amplitude's peak
    floor: float  # / eye distance, onset -> onset + FLOOR_STEP
    at_offset: float  # / eye distance, onset -> offset: what is left once the expression is over
    check: float  # measured / planted for a synth AU planted at CHECK_AMP
    duration_s: float
    rise_s: float
    noise_grey: float  # grey levels, one frame


@dataclass(frozen=True)
class SharedClip:
    uid: str
    action_units: str
    frames: list[Path]  # onset..offset
    apex: int  # index into frames


def shared_clips(assets: Path) -> tuple[list[SharedClip], list[str], int]:
    """The shared clips with a sheet apex inside onset..offset, the skipped ones with the reason, and the
    number of sheet clips whose frames are not shared (kept back on purpose)."""
    from trainer.data.casme2 import read_casme2_sheet
    from trainer.data.clips import APEX_FROM_SHEET, SkipClip, check_order, locate, numbered_frames

    entries, result = read_casme2_sheet(assets / SHEET, "2014-05-08")
    skipped = [f"{uid}: {why}" for uid, why in result.skipped]
    root = assets / FRAMES
    clips, absent = [], 0
    for e in entries:
        folder = root / e.folder
        if not folder.is_dir():
            absent += 1
            continue
        try:
            if e.apex_source != APEX_FROM_SHEET:
                raise SkipClip("the sheet gives no apex frame")
            check_order(e.onset, e.apex, e.offset)
            if e.apex == e.onset:
                raise SkipClip(f"apex {e.apex} is the onset frame: no onset->apex motion to measure")
            frames, _, (onset, apex, _) = locate(numbered_frames(folder), e.onset, e.apex, e.offset, folder,
                                                 window_only=True)
        except SkipClip as exc:
            skipped.append(f"{e.uid}: {exc}")
            continue
        clips.append(SharedClip(e.uid, e.action_units_raw, list(frames), apex - onset))
    return clips, skipped, absent


def face_landmarks(mesh, image: np.ndarray) -> np.ndarray | None:
    """(478, 2) FaceMesh landmarks in pixels (static mode: one frame is all it sees)."""
    res = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not res.multi_face_landmarks:
        return None
    h, w = image.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark], np.float32)


def part_at(marks: np.ndarray, xy: tuple[int, int]) -> str:
    best = min(((float(np.linalg.norm(marks[i] - xy)), part) for part, ids in PARTS.items() for i in ids))
    return best[1]


def camera_noise(greys: list[np.ndarray], mask: np.ndarray) -> float:
    """Robust std of one frame's grey noise on the face: 1.4826 MAD of consecutive differences / sqrt 2,
    the median of |d| read from the histogram of the integer differences with linear interpolation in its
    bin (a plain median of small integers jumps by whole grey levels); the median over the pairs."""
    out = []
    for a, b in zip(greys, greys[1:]):
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))[mask]
        counts = np.bincount(d)
        cum = np.cumsum(counts)
        half = d.size / 2.0
        k = int(np.searchsorted(cum, half))
        below = cum[k - 1] if k > 0 else 0
        lo, width = (0.0, 0.5) if k == 0 else (k - 0.5, 1.0)  # |d| = k stands for [k - 0.5, k + 0.5]
        out.append(1.4826 * (lo + width * (half - below) / counts[k]) / np.sqrt(2.0))
    return float(np.median(out))


def measure_clip(mesh, clip: SharedClip, check_au: str) -> ClipMotion | str:
    from edge.tools.synth import plant

    images = {}

    def grey(i: int) -> np.ndarray:
        if i not in images:
            images[i] = cv2.imread(str(clip.frames[i]))
        return cv2.cvtColor(images[i], cv2.COLOR_BGR2GRAY)

    g0 = grey(0)
    marks = face_landmarks(mesh, images[0])
    if marks is None:
        return f"{clip.uid}: no face found in the onset frame"
    eye = float(np.linalg.norm(marks[33] - marks[263]))
    box = max(3, int(round(PATCH_EYE * eye)) | 1)
    mask = face_mask(marks, g0.shape, box // 2)  # every box counted lies on the face
    amp, where = peak_displacement(g0, grey(clip.apex), mask, box)
    floor, _ = peak_displacement(g0, grey(FLOOR_STEP), mask, box)
    at_offset, _ = peak_displacement(g0, grey(len(clip.frames) - 1), mask, box)
    planted = cv2.cvtColor(plant(images[FLOOR_STEP], marks, check_au, CHECK_AMP), cv2.COLOR_BGR2GRAY)
    check, _ = peak_displacement(g0, planted, mask, box)
    noise = camera_noise([grey(i) for i in range(min(NOISE_PAIRS, len(clip.frames) - 1) + 1)], mask)
    return ClipMotion(clip.uid, clip.action_units, round(eye, 1), amp / eye, part_at(marks, where), floor / eye,
                      at_offset / eye,
                      check / eye / CHECK_AMP, (len(clip.frames) - 1) / FPS, clip.apex / FPS, noise)


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    p10, med, p90 = np.percentile(v, [10, 50, 90])
    return {"min": float(v.min()), "p10": float(p10), "median": float(med), "p90": float(p90), "max": float(v.max())}


def pooled(rows: list[ClipMotion]) -> dict[str, dict[str, float]]:
    out = {f: summary([getattr(r, f) for r in rows])
           for f in ("amplitude", "floor", "at_offset", "check", "duration_s", "rise_s", "noise_grey")}
    gain = out["check"]["median"]
    out["synth_amp"] = summary([r.amplitude / gain for r in rows])
    out["amp_over_floor"] = summary([r.amplitude / r.floor for r in rows])
    out["rise_frac"] = summary([r.rise_s / r.duration_s for r in rows])
    return out


def main(argv: list[str] | None = None) -> int:
    from edge.tools.synth import AU_MOTIONS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"),
                    help="the shared assets folder (default: $MESTREAM_ASSETS)")
    ap.add_argument("--json", type=Path, help="write the per-clip and pooled figures here")
    ap.add_argument("--limit", type=int, default=0, help="measure only the first N clips (0: all)")
    args = ap.parse_args(argv)
    if args.assets is None or not (args.assets / FRAMES).is_dir() or not (args.assets / SHEET).is_file():
        print(f"real_motion: needs the shared assets with {FRAMES} and {SHEET}: pass --assets or set MESTREAM_ASSETS",
              file=sys.stderr)
        return 2
    import mediapipe as mp

    cv2.setNumThreads(1)  # a shared 2-core machine
    clips, skipped, absent = shared_clips(args.assets)
    if args.limit:
        clips = clips[: args.limit]
    start = time.time()
    rows: list[ClipMotion] = []
    aus = list(AU_MOTIONS)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        for k, clip in enumerate(clips):
            got = measure_clip(mesh, clip, aus[k % len(aus)])
            if isinstance(got, str):
                skipped.append(got)
            else:
                rows.append(got)
    took = time.time() - start
    if not rows:
        print("real_motion: no clip measured", file=sys.stderr)
        return 1
    stats = pooled(rows)
    parts = {p: sum(r.peak_at == p for r in rows) for p in PARTS}
    print(f"{len(rows)} clips measured in {took:.0f} s; {len(skipped)} skipped; {absent} sheet clips not shared")
    for why in skipped:
        print(f"  skipped {why}")
    print(f"{'':15s} {'min':>8s} {'p10':>8s} {'median':>8s} {'p90':>8s} {'max':>8s}")
    for name, s in stats.items():
        print(f"{name:15s} " + " ".join(f"{s[k]:8.4f}" for k in ("min", "p10", "median", "p90", "max")))
    print("peak at: " + ", ".join(f"{p} {n}" for p, n in parts.items()))
    if args.json:
        doc = {"pooled": stats, "peak_at": parts, "clips": [asdict(r) for r in rows], "skipped": skipped,
               "not_shared": absent, "seconds": round(took, 1),
               "settings": {"patch_eye": PATCH_EYE, "floor_step": FLOOR_STEP, "noise_pairs": NOISE_PAIRS,
                            "check_amp": CHECK_AMP, "flow": "edge.perception.flow.tvl1_flow, TVL1Params()",
                            "fps": FPS, "sheet": SHEET}}
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
