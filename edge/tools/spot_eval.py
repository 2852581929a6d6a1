"""capture -> track -> spot over a video in this process, scored against a truth CSV, and its timeline plot:
the work of `mestream spot-eval` (edge/commands/spot_eval.py).
"""

from __future__ import annotations

from pathlib import Path


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
    from edge.spotting import make_spotter
    from edge.spotting.metrics import intervals_of, score_video
    from edge.spotting.params import SpotParams
    from edge.stages.base import run_chain
    from edge.stages.capture import Capture
    from edge.stages.face_tracking import FaceTracking
    from edge.tools.synth import read_truth

    truth = read_truth(truth_path) if truth_path is not None else None
    capture = Capture(source, fast=True)
    params = SpotParams(method="learned", artifact=str(artifact)) if artifact is not None else SpotParams()
    spotter = make_spotter(params, record_trace=True)
    from edge.tools.progress import ProgressSource, video_frame_count

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


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edge.tools.plots import save_png

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
    save_png(fig, path, dpi=110)
    plt.close(fig)
