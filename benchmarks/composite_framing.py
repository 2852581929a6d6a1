"""Where the MEGC2019 composite's face sits in the tracker's aligned crop, and how close the re-cut live input comes.

    MESTREAM_ASSETS=../shared/assets python benchmarks/composite_framing.py --prep-dir PREP [--per-clip F.csv]

PREP is a `mestream prep` cache of casme2_cropped (2019-07-01 sheet; e.g. the one benchmarks/cross_form_loso.py
makes). For every CASME II clip there that is also in the composite:

1. the aligned apex crop (128, grey) is registered to the composite's apex image
   (`combined_datasets_whole/<name>.jpg`, area-resized to 128) by an affine ECC; the warp maps composite
   pixels into the crop, so its diagonal and translation give the composite's window as fractions of the
   crop. The median over clips is what edge/perception/composite_framing.py's COMPOSITE_WINDOW records
   (compared here; leave-one-subject-out range printed too);
2. Pearson per channel (u, v, strain) over the 28x28 pixels between the composite's flow image and
   (live) the prepared live input, flow_input of the aligned crops, and (re-cut) composite_flow_input,
   the same crops cut to COMPOSITE_WINDOW first. Median (min..max) over clips; again over the clips whose
   apex crop registers to the composite's apex image at >= 0.99 after the warp (the others were cut from
   other frames for the composite).
3. two re-cut inputs made another way, benchmarks/cross_form_loso.py's settings (n) and (o): u, v and strain
   shrunk to 28 by a triangle filter instead of area (re-cut tri), and the apex crop put back into the onset
   crop's alignment before the flow (re-cut onset-aligned); a last table keeps the clips on which the tracker
   re-aligned between onset and apex (their two transforms differ), and for each of them how far the aligner
   moved (the crop centre's source point, onset -> apex) against how far the whole frame moved (translation ECC
   of the raw onset and apex frames): a real head move, or one the aligner made up.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.perception.composite_framing import COMPOSITE_WINDOW, composite_flow_input, reframe  # noqa: E402
from edge.perception.flow import flow_input  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_form_loso import apex_in_onset_alignment, triangle_flow_input  # noqa: E402
from prep_megc2019_form import corr, shared_clips  # noqa: E402

from trainer.megc2019_form import as_flow  # noqa: E402
from trainer.prep import frame_index  # noqa: E402

REGISTERED = 0.99
FORMS = ("live", "re-cut", "re-cut tri", "re-cut onset-aligned")


def register(crop: np.ndarray, reference: np.ndarray) -> tuple[float, np.ndarray]:
    """ECC affine from reference pixels to crop pixels, and the correlation it reaches (nan if it fails)."""
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        cc, warp = cv2.findTransformECC(reference.astype(np.float32), crop.astype(np.float32), warp,
                                        cv2.MOTION_AFFINE,
                                        (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-5), None, 5)
    except cv2.error:
        return float("nan"), warp
    return float(cc), warp


def window_of(warp: np.ndarray, side: int) -> np.ndarray:
    x0, y0 = warp[0, 2] / side, warp[1, 2] / side
    return np.array([x0, y0, x0 + warp[0, 0], y0 + warp[1, 1]])


def moves(spec, transforms: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(aligner, frame): source-pixel shift onset -> apex of the point the crop centre shows, and of the whole raw
    frame (translation ECC)."""
    index = frame_index(spec.frames_dir)
    onset, apex = (cv2.imread(str(index[n]), cv2.IMREAD_GRAYSCALE).astype(np.float32) for n in (spec.onset, spec.apex))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(onset, apex, np.eye(2, 3, dtype=np.float32), cv2.MOTION_TRANSLATION, criteria, None, 5)
    centre = np.array([side / 2, side / 2, 1.0])  # the middle of the aligned crop
    onset_t, apex_t = (np.linalg.inv(np.vstack([t, [0.0, 0.0, 1.0]])) @ centre for t in transforms)
    return (apex_t - onset_t)[:2], warp[:, 2].astype(np.float64)


def measure(assets: Path, prep_dir: Path) -> list[dict]:
    rows = []
    whole = assets / "preprocessed" / "HTNet_MEGC2019_composite" / "combined_datasets_whole"
    for spec, png in shared_clips(assets):
        npz = prep_dir / spec.subject / f"{spec.name}.npz"
        if not npz.exists():
            continue
        with np.load(npz) as d:
            onset, apex, live, transforms = d["onset_crop"], d["apex_crop"], d["flow"], d["transforms"]
        side = apex.shape[0]
        jpg = cv2.imread(str(whole / f"{spec.name}.jpg"), cv2.IMREAD_GRAYSCALE)
        cc, warp = register(apex, cv2.resize(jpg, (side, side), interpolation=cv2.INTER_AREA))
        reference = as_flow(cv2.imread(str(png)))
        re_aligned = not np.array_equal(transforms[0], transforms[1])
        recut = corr(composite_flow_input(onset, apex), reference)
        rows.append({"clip": spec.name, "subject": spec.subject, "registered": cc, "window": window_of(warp, side),
                     "live": corr(live, reference),
                     "re-cut": recut,
                     "re-cut tri": corr(triangle_flow_input(reframe(onset), reframe(apex)), reference),
                     # only a re-aligned clip's apex changes when put back into the onset's alignment
                     "re-cut onset-aligned": corr(composite_flow_input(onset, apex_in_onset_alignment(apex, transforms)),
                                                  reference) if re_aligned else recut,
                     "re-aligned": re_aligned,
                     "moves": moves(spec, transforms, side) if re_aligned else None,
                     "check": float(np.abs(flow_input(onset, apex) - live).max())})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| input | clips | u median (min..max) | v median (min..max) | strain median (min..max) | clips >= 0.95 u / v / strain |",
             "|---|---|---|---|---|---|"]
    for form in FORMS:
        m = np.array([r[form] for r in rows])
        cells = [f"{np.median(m[:, c]):.3f} ({m[:, c].min():.3f}..{m[:, c].max():.3f})" for c in range(3)]
        lines.append(f"| {form} | {len(m)} | {' | '.join(cells)} | {' / '.join(str(int((m[:, c] >= 0.95).sum())) for c in range(3))} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("MESTREAM_ASSETS", "../shared/assets")))
    parser.add_argument("--prep-dir", type=Path, required=True, help="a `mestream prep` cache of casme2_cropped")
    parser.add_argument("--per-clip", type=Path, default=None, help="also write per-clip figures to this CSV")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = measure(args.assets, args.prep_dir)
    if not rows:
        print(f"no prepared shared clip in {args.prep_dir}; run `mestream prep` (or cross_form_loso.py) first")
        return 1
    windows = np.array([r["window"] for r in rows])
    subjects = sorted({r["subject"] for r in rows})
    loso = np.array([np.median(np.array([r["window"] for r in rows if r["subject"] != s]), axis=0) for s in subjects])

    def fmt(w) -> str:
        return "(" + ", ".join(f"{v:.4f}" for v in w) + ")"

    print(f"{len(rows)} clips; registered apex correlation median {np.nanmedian([r['registered'] for r in rows]):.4f}")
    print(f"composite window in the aligned crop (x0, y0, x1, y1): median {fmt(np.median(windows, axis=0))}, "
          f"IQR {fmt(np.percentile(windows, 75, axis=0) - np.percentile(windows, 25, axis=0))}; "
          f"leave-one-subject-out {fmt(loso.min(axis=0))}..{fmt(loso.max(axis=0))}; COMPOSITE_WINDOW {fmt(COMPOSITE_WINDOW)}")
    print(f"prepared live flow re-made by flow_input: max abs difference {max(r['check'] for r in rows):.2e}")
    print(f"\nall clips:\n{table(rows)}\n")
    kept = [r for r in rows if r["registered"] >= REGISTERED]
    print(f"clips whose apex crop registers to the composite's apex image at >= {REGISTERED} ({len(kept)} of {len(rows)}):")
    print(table(kept))
    moved = [r for r in kept if r["re-aligned"]]
    print(f"\nof them, the clips on which the tracker re-aligned between onset and apex ({len(moved)}):")
    print(table(moved))
    print("\n| clip | aligner moved (x, y source px) | frame moved (ECC) | re-cut u / v | onset-aligned u / v |\n|---|---|---|---|---|")
    for r in moved:
        a, f = r["moves"]
        print(f"| {r['clip']} | {a[0]:+.1f}, {a[1]:+.1f} | {f[0]:+.1f}, {f[1]:+.1f} | {r['re-cut'][0]:.2f} / {r['re-cut'][1]:.2f} | "
              f"{r['re-cut onset-aligned'][0]:.2f} / {r['re-cut onset-aligned'][1]:.2f} |")
    print(f"{time.perf_counter() - start:.0f} s")
    if args.per_clip:
        with open(args.per_clip, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["clip", "registered", *(f"{form} {c}" for form in FORMS for c in ("u", "v", "strain"))])
            for r in rows:
                w.writerow([r["clip"], f"{r['registered']:.4f}", *(f"{x:.4f}" for form in FORMS for x in r[form])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
