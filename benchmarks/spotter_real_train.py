"""The learned spotter (SOFTNet family) trained on real micro-expressions: the TUNE subjects' test videos.

    MESTREAM_ASSETS=../shared/assets python benchmarks/spotter_real_train.py --work /tmp/real --out OUT [--fps 200 30]
        [--protocol still] [--epochs 10]
    # then, on subjects it never saw:
    MESTREAM_ASSETS=../shared/assets python benchmarks/spotting_real.py --work /tmp/real --set eval \\
        --variant "real:method=learned,artifact=OUT/spotter.onnx"

The videos are benchmarks/spotting_real.py's (each real CASME II clip held still before and after, tracked by the live
track stage), read from its cache under WORK (run spotting_real.py with the same --protocol and --fps first). Only
the TUNE subjects train; the spotter's own recipe chooses its peaks on leave-one-subject-out scores of those
subjects (trainer/spotting/train.py), so the EVAL subjects stay unseen. Writes OUT/spotter.onnx and OUT/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tune_videos(assets: Path, work: Path, protocol: str, fps_list: list[float], spec) -> list:
    """SpotVideo per (TUNE clip, fps) from spotting_real's cache; a missing video is a clear error."""
    from spotting_real import load_clips

    from edge.spotting.metrics import Interval
    from trainer.spotting.features import load_tracked
    from trainer.spotting.train import make_video

    videos = []
    for clip in load_clips(assets, "tune"):
        for fps in fps_list:
            path = work / "cache" / f"{clip.subject}_{clip.name}_{protocol}_{fps:g}_0.npz"
            if not path.is_file():
                raise SystemExit(f"{path} does not exist; run benchmarks/spotting_real.py --work {work} --set tune "
                                 f"--protocol {protocol} --fps {fps:g} first")
            tracked, extra = load_tracked(path, path.stem)
            onset, offset, apex = (int(v) for v in extra["truth"])
            videos.append(make_video(path.stem, clip.subject, tracked, [Interval(onset, offset, "micro", apex)], spec))
    return videos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("MESTREAM_ASSETS", "../shared/assets")))
    parser.add_argument("--work", type=Path, required=True, help="benchmarks/spotting_real.py's --work")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--protocol", default="still", choices=("still", "drift", "far"))
    parser.add_argument("--fps", nargs="+", type=float, default=[200.0, 30.0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    from edge.spotting.learned import FeatureSpec
    from trainer.spotting.train import SpotterRecipe, train_spotter

    start = time.perf_counter()
    spec = FeatureSpec()
    videos = tune_videos(args.assets, args.work, args.protocol, args.fps, spec)
    print(f"{len(videos)} videos of {len({v.group for v in videos})} TUNE subjects, "
          f"{sum(v.windows for v in videos)} windows [{time.perf_counter() - start:.0f} s]", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/spotter_real_train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = train_spotter(videos, spec, SpotterRecipe(epochs=args.epochs), "loso", args.out / "spotter.onnx",
                           dataset="casme2-clips", command=command)
    report["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    pooled = report["cross_validation"]["pooled"]
    print("LOSO over the TUNE subjects (IoU >= 0.5, pooled): "
          + ", ".join(f"{k} F1 {v['f1']:.3f} (P {v['precision']:.3f}, R {v['recall']:.3f})" for k, v in pooled.items())
          + f"; peaks {report['peaks']}; {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
