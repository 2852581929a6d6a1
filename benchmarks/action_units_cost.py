"""What the action-unit model adds to an event in the infer process, measured in pairs (issue 18 item 4).

    python benchmarks/action_units_cost.py [--events 40] [--artifact engines/default/mestream-default.onnx]

Two classify stages on the shipped artifacts, one with action units "off" and one with "default", score the
same interval in turn (a smooth texture and the same with a 1.5 px brow-like lift, 128x128 crops: the flow is
the real TV-L1), so machine load hits both alike. Prints p50/p95 of the whole per-event time of each and of
the AU model's own share (the event's latency_ms.action_units), which is the most it can add to
offset-to-result: it runs after the classifier, on the classifier's flow.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def textured_pair(size: int = 128, lift: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.5)
    base = cv2.normalize(base, None, 30, 220, cv2.NORM_MINMAX)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bump = lift * np.exp(-((xx - 0.3 * size) ** 2 + (yy - 0.35 * size) ** 2) / (2 * (0.1 * size) ** 2))
    apex = cv2.remap(base, xx, yy + bump.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.round(base).astype(np.uint8), np.round(apex).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--artifact", type=Path, default=None, help="classifier (default: the packaged one)")
    args = parser.parse_args()

    from edge.messages import Message
    from edge.stages.classify import Classify, ClassifyOptions
    from engines import default_artifact_path

    onset, apex = textured_pair()
    point = lambda seq: {"seq": seq, "t_capture_ns": 1_000_000_000 + seq}  # noqa: E731
    msg = Message("interval", {"kind": "micro", "score": 2.5, "fps": 200.0, "box": [0, 0, 128, 128],
                               "onset": point(0), "apex": point(20), "offset": point(40)}, {"onset": onset, "apex": apex})
    artifact = args.artifact or default_artifact_path()
    stages = {au: Classify(artifact, options=ClassifyOptions(action_units=au, speculate=False)) for au in ("off", "default")}
    for stage in stages.values():
        stage.open()
    times: dict[str, list[float]] = {au: [] for au in stages}
    au_ms = []
    try:
        for _ in range(args.events):
            for au, stage in stages.items():
                t0 = time.perf_counter()
                [event] = stage.process(msg)
                times[au].append(1e3 * (time.perf_counter() - t0))
                if au == "default":
                    au_ms.append(event.header["latency_ms"]["action_units"])
        shares = stages["default"]._au.shares_flow
    finally:
        for stage in stages.values():
            stage.close()
    import os

    print(f"{args.events} events each, in turn; load average {os.getloadavg()[0]:.1f}; AU model on the classifier's flow: {shares}")
    for au, values in times.items():
        print(f"action_units {au:7s}: per event p50 {np.percentile(values, 50):.1f} ms, p95 {np.percentile(values, 95):.1f} ms")
    print(f"AU model's own time: p50 {np.percentile(au_ms, 50):.3f} ms, p95 {np.percentile(au_ms, 95):.3f} ms, "
          f"max {max(au_ms):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
