"""`mestream spot-eval`: run capture -> track -> spot on a video and score the spotted intervals.

The stages run in this process (run_chain, no sockets), the file as fast as it decodes. Intervals are
scored against a truth CSV (from `mestream synth`) with the standard metric: a hit is IoU >= 0.5 in
frames, counted inclusively; precision, recall and F1 for micro, macro and overall. Without --truth it
only lists what was spotted (a negative video should list no micro-expressions).

    mestream spot-eval --source synth.mp4 --truth synth.csv --plot spot.png --json spot.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from engines.errors import MestreamError

HELP = "run capture -> track -> spot on a video and score the intervals (IoU >= 0.5 P/R/F1), with a plot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="video file to spot on")
    parser.add_argument("--truth", type=Path, help="ground-truth CSV (from `mestream synth`)")
    parser.add_argument("--plot", type=Path, help="write a PNG of the motion signal, threshold, truth and detections (default: next to --json)")
    parser.add_argument("--json", type=Path, help="write the scores and intervals as JSON")
    parser.add_argument("--artifact", type=Path, help="spot with this learned (softnet) spotter instead of the training-free one")


class _FaceCount:
    """A pass-through stage counting the frames the tracker found a face in."""

    name = "count"

    def __init__(self) -> None:
        self.found = 0

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def process(self, msg):
        if msg.topic == "face" and msg.header.get("found"):
            self.found += 1
        return [msg]


def evaluate(source: str, truth_path: Path | None, progress: bool = False, artifact: Path | None = None) -> dict:
    """Run the three stages over `source`; returns intervals, statuses, trace and (with truth) scores."""
    from edge.spotting.metrics import intervals_of, score_video
    from edge.spotting import make_spotter
    from edge.spotting.params import SpotParams
    from edge.stages.base import run_chain
    from edge.stages.capture import Capture
    from edge.stages.face_tracking import FaceTracking
    from edge.synth import read_truth

    truth = read_truth(truth_path) if truth_path is not None else None
    capture = Capture(source, fast=True)
    params = SpotParams(method="learned", artifact=str(artifact)) if artifact is not None else SpotParams()
    spotter = make_spotter(params, record_trace=True)
    from edge.progress import ProgressSource, video_frame_count

    total = video_frame_count(source) if progress and "://" not in str(source) else None
    faces = _FaceCount()
    out = run_chain(ProgressSource(capture, "spot-eval", total, enabled=progress), [FaceTracking(), faces, spotter])
    predicted = intervals_of(out)
    statuses = [
        {"stage": m.header.get("stage"), "event": m.header.get("event"), "seq": m.header.get("seq"),
         "detail": m.header.get("detail")}
        for m in out
        if m.topic == "status"
    ]
    result = {
        "source": str(source),
        "fps": capture.fps,
        "frames": faces.found,  # the spotter's trace holds only the frames it analysed (SpotParams.max_rate_hz)
        "predicted": [{"onset": p.onset, "apex": p.apex, "offset": p.offset, "kind": p.kind} for p in predicted],
        "statuses": statuses,
        "trace": spotter.trace,
        "counts": {k: sum(p.kind == k for p in predicted) for k in ("micro", "macro")},
    }
    if truth is not None:
        scores = score_video(predicted, truth)
        result["truth"] = [{"onset": t.onset, "apex": t.apex, "offset": t.offset, "kind": t.kind} for t in truth]
        result["scores"] = {k: c.as_dict() for k, c in scores.items()}
    return result


def _atomic(path: Path, write) -> None:
    if not path.parent.is_dir():
        raise MestreamError(f"folder {path.parent} does not exist; create it first or choose another path")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    trace = np.array(result["trace"] or [[0, 0, 0]], dtype=np.float64)
    seq, s, thr = trace[:, 0], trace[:, 1], trace[:, 2]
    fig, ax = plt.subplots(figsize=(14, 4))
    ax.plot(seq, s, lw=0.8, color="k", label="motion s(t)")
    ax.plot(seq, np.where(np.isfinite(thr), thr, np.nan), lw=0.8, color="tab:orange", label="threshold")
    top = float(np.nanmax(s)) if s.size else 1.0
    colors = {"micro": "tab:red", "macro": "tab:purple", "blink": "tab:cyan", "head": "tab:olive"}
    for t in result.get("truth", []):
        ax.axvspan(t["onset"], t["offset"], ymin=0.0, ymax=0.5, color=colors.get(t["kind"], "grey"), alpha=0.25)
    for p in result["predicted"]:
        ax.axvspan(p["onset"], p["offset"], ymin=0.5, ymax=1.0, color=colors[p["kind"]], alpha=0.45)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.4) for c in colors.values()]
    ax.legend(ax.get_lines() + handles, ["motion s(t)", "threshold", *colors], loc="upper right", fontsize=8, ncol=3)
    ax.set_ylim(0, max(top * 1.1, 0.3))
    ax.set_xlabel("frame (truth: lower half, detections: upper half)")
    ax.set_ylabel("residual motion (px on the flow grid)")
    title = Path(result["source"]).name
    if "scores" in result:
        sc = result["scores"]
        title += "   " + "   ".join(f"{k} F1 {sc[k]['f1']:.3f}" for k in ("micro", "macro", "overall"))
    ax.set_title(title)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    if "://" not in args.source and " ! " not in args.source and not Path(args.source).is_file():
        raise MestreamError(f"--source {args.source} does not exist; expected a video file")
    if args.truth is not None and not args.truth.is_file():
        raise MestreamError(f"--truth {args.truth} does not exist; expected a CSV written by `mestream synth`")
    from edge.progress import show_progress

    result = evaluate(args.source, args.truth, progress=show_progress(args), artifact=args.artifact)
    lost = sum(s["event"] == "face_lost" for s in result["statuses"])
    found = sum(s["event"] == "face_found" for s in result["statuses"])
    print(f"{Path(args.source).name}: {result['frames']} frames with a face at {result['fps']:g} fps; "
          f"face_found {found}, face_lost {lost}; spotted {result['counts']['micro']} micro, "
          f"{result['counts']['macro']} macro")
    if "scores" in result:
        print(f"{'':8s} {'TP':>4s} {'pred':>5s} {'truth':>5s} {'P':>6s} {'R':>6s} {'F1':>6s}")
        for kind, c in result["scores"].items():
            print(f"{kind:8s} {c['tp']:4d} {c['predicted']:5d} {c['truth']:5d} "
                  f"{c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f}")
    if args.json is not None:
        doc = {k: v for k, v in result.items() if k != "trace"}
        _atomic(args.json, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))
    plot_path = args.plot or (args.json.with_suffix(".png") if args.json is not None else None)
    if plot_path is not None:  # the timeline goes next to the JSON unless --plot says where
        plot(result, plot_path)
    return 0
