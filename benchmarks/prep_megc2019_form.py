"""How close is `mestream prep --form megc2019` to the MEGC2019 composite's own flow images?

    MESTREAM_ASSETS=../shared/assets .venv/bin/python benchmarks/prep_megc2019_form.py [--variant whole/224 ...] [--per-clip F.csv]
    MESTREAM_ASSETS=../shared/assets .venv/bin/python benchmarks/prep_megc2019_form.py --recipes   # flow / strain / shrink

For every CASME II clip in casme2_cropped/CASME2_Cropped that is also in the composite (same subject and
EP name; onset and apex from the 2019-07-01 sheet), the onset -> apex image is made by
trainer/megc2019_form.py from the Cropped frames, with each variant asked for (face box / flow size: 28 is
the published recipe, 224 the default), and compared with the
composite's `STSNet_whole_norm_u_v_os/<name> .png`: Pearson correlation per channel (u, v, strain) over
the 28x28 pixels, then median and range over clips. Clips whose box cannot be made are counted.

--recipes instead compares, on the whole Cropped frame at 224, the flow method (OpenCV's DualTVL1 with the
recipe's settings, or the IPOL TV-L1 of trainer/ipol_tvl1.py), the strain's differences (forward with the last
row / column repeated, or central) and how u, v, strain are shrunk to 28 (area, or the triangle filter of
megc2019_form.shrink); the product runs ipol/central/triangle.

A second table keeps only the clips whose apex frame here is the composite's apex image: the composite's
`combined_datasets_whole/<name>.jpg` is the Cropped apex frame resized to 224x224 (grey Pearson 0.9998 on
most clips), and a clip where it is not (under APEX_MATCH) was rebuilt differently in casme2_cropped or
cut from other frames in the composite, so its flow cannot match either.
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

from engines.errors import MestreamError
from trainer.data.casme2 import load_casme2
from trainer.data.clips import clip_spec
from trainer.ipol_tvl1 import tvl1_flow
from trainer.megc2019_form import EyeBoxes, as_flow, megc2019_image, optical_strain, scale_channel, shrink, whole_box
from trainer.prep import frame_index

CHANNELS = ("u", "v", "strain")
VARIANTS = ("whole/224", "whole/28", "eyes/224", "eyes/28")
APEX_MATCH = 0.99
# the recipe's settings as cv2.optflow.DualTVL1OpticalFlow_create keywords (what --form megc2019 ran before IPOL)
OPENCV_TVL1 = {"tau": 0.25, "theta": 0.3, "nscales": 5, "warps": 5, "epsilon": 0.01, "innnerIterations": 30,
               "outerIterations": 10, "scaleStep": 0.5, "gamma": 0.1, "medianFiltering": 5, "useInitialFlow": False}


def forward_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The strain by forward differences, the last row and column repeated (the product's before IPOL)."""
    u_x, v_x = u[:-1, :-1] - u[:-1, 1:], v[:-1, :-1] - v[:-1, 1:]
    u_y, v_y = u[:-1, :-1] - u[1:, :-1], v[:-1, :-1] - v[1:, :-1]
    return np.pad(np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2), ((0, 1), (0, 1)), mode="edge")


def recipe_images(onset: np.ndarray, apex: np.ndarray) -> dict[str, np.ndarray]:
    """flow/strain/shrink -> the (3, 28, 28) u, v, strain a trainer reads, on the whole frame at 224."""
    a, b = (cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (224, 224), interpolation=cv2.INTER_AREA) for f in (onset, apex))
    f = cv2.optflow.DualTVL1OpticalFlow_create(**OPENCV_TVL1).calc(a, b, None).astype(np.float64)
    flows = {"opencv": (f[..., 0], f[..., 1]), "ipol": tvl1_flow(a, b)}
    shrinks = {"area": lambda c: cv2.resize(c, (28, 28), interpolation=cv2.INTER_AREA), "triangle": shrink}
    out = {}
    for fn, (u, v) in flows.items():
        for sn, strain_of in (("forward", forward_strain), ("central", optical_strain)):
            strain = strain_of(u, v)
            for rn, small in shrinks.items():
                su, sv, ss = (small(c) for c in (u, v, strain))
                out[f"{fn}/{sn}/{rn}"] = as_flow(np.dstack([scale_channel(ss), scale_channel(sv), scale_channel(su)]))
    return out


def corr(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(a[c].ravel(), b[c].ravel())[0, 1]) for c in range(3)]


def shared_clips(assets: Path) -> list:
    comp = assets / "preprocessed" / "HTNet_MEGC2019_composite"
    with open(assets / "annotations" / "wangzhifengharrison_HTNet" / "combined_3_class2_for_optical_flow.csv") as f:
        names = {f"{r['sub']}_{r['filename_o']}" for r in csv.DictReader(f) if r["dataset"] == "casme2"}
    sheet = assets / "annotations" / "MouathAb_AnalyseMiE" / "CASME2-coding-20190701.xlsx"
    result = load_casme2(assets / "casme2_cropped" / "CASME2_Cropped", sheet, "2019-07-01", "casme2-7class")
    specs = [clip_spec(c) for c in result.clips]
    return [(s, comp / "STSNet_whole_norm_u_v_os" / f"{s.name} .png") for s in specs if s.name in names]


def apex_match(assets: Path, name: str, apex: np.ndarray) -> float:
    """Grey Pearson of our apex frame (resized to 224x224) with the composite's apex image."""
    jpg = cv2.imread(str(assets / "preprocessed" / "HTNet_MEGC2019_composite" / "combined_datasets_whole" / f"{name}.jpg"),
                     cv2.IMREAD_GRAYSCALE)
    ours = cv2.resize(cv2.cvtColor(apex, cv2.COLOR_BGR2GRAY), (224, 224), interpolation=cv2.INTER_AREA)
    return float(np.corrcoef(ours.ravel().astype(float), jpg.ravel().astype(float))[0, 1])


def measure(assets: Path, variants: list[str], recipes: bool = False) -> tuple[dict[str, list], list[str]]:
    clips = shared_clips(assets)
    rows: dict[str, list] = {v: [] for v in variants}
    failed: list[str] = []
    finder = EyeBoxes() if any(v.startswith("eyes") for v in variants) else None
    for spec, png in clips:
        reference = as_flow(cv2.imread(str(png)))
        index = frame_index(spec.frames_dir)
        onset, apex = cv2.imread(str(index[spec.onset])), cv2.imread(str(index[spec.apex]))
        rows.setdefault("apex match", []).append((spec.name, apex_match(assets, spec.name, apex)))
        if recipes:
            for name, flow in recipe_images(onset, apex).items():
                rows.setdefault(name, []).append((spec.name, corr(flow, reference)))
            continue
        boxes = {"whole": (whole_box(onset), whole_box(apex))}
        if finder is not None:
            try:
                boxes["eyes"] = (finder.box(onset), finder.box(apex))
            except MestreamError as exc:  # no face for the eye box: counted, not fatal
                failed.append(f"eyes {spec.name}: {exc}")
        for variant in variants:
            box, size = variant.split("/")
            if box in boxes:
                image = megc2019_image(onset, apex, *boxes[box], flow_size=int(size))
                rows[variant].append((spec.name, corr(as_flow(image), reference)))
    return rows, failed


def table(rows: dict[str, list], keep: set[str] | None = None) -> str:
    lines = [("| variant | clips | u median (min..max) | v median (min..max) | strain median (min..max) | "
              "clips >= 0.95 u / v / strain |"), "|---|---|---|---|---|---|"]
    for b, got in rows.items():
        got = [r for name, r in got if keep is None or name in keep]
        if not got:
            continue
        m = np.array(got)
        cells = [f"{np.median(m[:, c]):.3f} ({m[:, c].min():.3f}..{m[:, c].max():.3f})" for c in range(3)]
        hits = " / ".join(str(int((m[:, c] >= 0.95).sum())) for c in range(3))
        lines.append(f"| {b} | {len(got)} | {' | '.join(cells)} | {hits} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("MESTREAM_ASSETS", "../shared/assets")))
    parser.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--recipes", action="store_true", help="compare flow methods, strain differences and "
                        "shrink filters on whole/224 instead of face boxes and flow sizes")
    parser.add_argument("--per-clip", type=Path, default=None, help="also write per-clip figures to this CSV")
    args = parser.parse_args()
    start = time.perf_counter()
    from edge.native_logs import filtered_native_stderr

    with filtered_native_stderr():  # FaceMesh's start-up chatter (eye boxes)
        rows, failed = measure(args.assets, [] if args.recipes else args.variant, args.recipes)
    matches = dict(rows.pop("apex match"))
    keep = {name for name, score in matches.items() if score >= APEX_MATCH}
    print(f"all shared clips:\n{table(rows)}\n")
    print(f"clips whose apex frame is the composite's apex image (grey Pearson >= {APEX_MATCH}; "
          f"{len(keep)} of {len(matches)}; the others: "
          f"{', '.join(f'{n} {s:.3f}' for n, s in sorted(matches.items(), key=lambda x: x[1]) if s < APEX_MATCH)}):")
    print(table(rows, keep))
    for parity, rest in (("odd", 1), ("even", 0)):  # odd subjects chose the recipe; even ones were held out
        subset = {n for n in keep if int(n.split("_")[0][3:]) % 2 == rest}
        print(f"\nthe same, {parity}-numbered subjects only ({len(subset)} clips):\n{table(rows, subset)}")
    print(f"{sum(len(r) for r in rows.values())} images in {time.perf_counter() - start:.0f}s; "
          f"{len(failed)} failed{': ' + '; '.join(failed[:5]) if failed else ''}")
    if args.per_clip:
        with open(args.per_clip, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["variant", "clip", *CHANNELS])
            for b, got in rows.items():
                for name, r in got:
                    w.writerow([b, name, *(f"{x:.4f}" for x in r)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
