"""The learned apex spotter (SOFTNet family): flow features of facial regions, an exported score network, peaks.

Features (the same code makes them for training, trainer/spotting/features.py, and at run time here):
per frame i, the flow between the aligned crops of frames i and i + k (k = lag_s at the stream's fps) is
the training-free spotter's own cheap flow (edge/spotting/signal.py RegionMotion.residual: OpenCV DIS on
the crop shrunk to flow_size x flow_size, affine head motion removed). Its u, v and optical strain
(edge/perception/flow.py optical_strain) are cut into SOFTNet's three regions of interest and laid out
on one ROI x ROI image per channel:

    +-------------------+-------------------+
    | left brow + eye   | right brow + eye  |   ROI/2 high; the eye boxes are zeroed (blinks), as SOFTNet
    +-------------------+-------------------+
    | mouth (both corners)                  |   ROI/2 high
    +---------------------------------------+

The network (family "softnet", exported as an ONNX artifact) regresses an apex score for the window
[i, i + k]: the fraction of the window covered by an expression (SOFTNet's pseudo-label). Scores are
smoothed by a centred moving average, runs above the threshold (gaps shorter than `merge`
frames joined) become intervals shifted by k/2 (a window scores high when it starts about k/2 before
the expression's frames); up to micro_max_s long they are micro-expressions, longer ones macro.
Threshold, smoothing and merge gap are read from the artifact: the trainer chose them on
leave-one-video-out scores of its training videos, never on evaluation videos.

    spotter = LearnedSpotter(SpotParams(method="learned", artifact="spotter.onnx"))
    # a drop-in for edge.spotting.regional.RegionalSpotter: "face" messages in, "interval" messages out
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.messages import Message, status
from edge.perception.align import region_boxes
from edge.perception.flow import optical_strain
from edge.spotting.continuity import restart_reason, starting_fps
from edge.spotting.intervals import interval_message
from edge.spotting.params import SpotParams
from edge.spotting.signal import RegionMotion
from engines.errors import MestreamError

log = logging.getLogger(__name__)

FAMILY = "softnet"
INPUT_NAME = "flow"
OUTPUT_NAME = "score"
FLOW_ALGORITHM = "dis-affine-residual"
FEATURE_FORM = (
    "flow from frame i to i+k (DIS on the aligned crop shrunk to flow_size, affine head motion removed), "
    "channels u, v, optical strain in pixels of the flow grid (no scaling), regions laid out as roi_layout"
)


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature is: written into the artifact, read back at run time so both sides agree."""

    flow_size: int = 64  # the training-free spotter's flow grid (SpotParams.flow_size)
    roi: int = 42  # SOFTNet's input side
    lag_s: float = 0.2  # k: about half a short expression (SOFTNet: half the mean expression length)

    def __post_init__(self) -> None:
        if not 16 <= self.flow_size <= 256:
            raise MestreamError(f"flow_size={self.flow_size} is out of range; expected 16..256, e.g. 64")
        if self.roi < 8 or self.roi % 2:
            raise MestreamError(f"roi={self.roi}; expected an even side of at least 8 pixels, e.g. 42")
        if not self.lag_s > 0:
            raise MestreamError(f"lag_s={self.lag_s}; expected a positive number of seconds, e.g. 0.2")

    def k(self, fps: float) -> int:
        return max(1, int(round(self.lag_s * fps)))

    def to_json(self) -> dict[str, Any]:
        return {"flow_size": self.flow_size, "roi": self.roi, "lag_s": self.lag_s,
                "roi_layout": roi_layout(self)}


@dataclass(frozen=True)
class PeakParams:
    """How scores become intervals (chosen by the trainer on its own training videos)."""

    threshold: float = 0.5  # smoothed score a run must reach
    smooth: int = 5  # centred moving average over this many frames (odd)
    merge: int = 6  # runs closer than this many frames are one event (rise and fall of a held expression)
    micro_max_s: float = 0.5
    # Adaptive part, as SOFTNet thresholds each video against its own scores: the threshold is at least
    # median + z * 1.4826 * MAD of the smoothed scores of the last history_s seconds (z = 0: fixed only),
    # so a face whose scores run high everywhere (texture, glasses, camera noise) does not fire throughout.
    z: float = 0.0
    history_s: float = 3.0
    min_windows: int = 1  # runs shorter than this many windows are noise, not events


    def __post_init__(self) -> None:
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise MestreamError(f"smooth={self.smooth}; expected an odd number of frames >= 1, e.g. 5")
        if self.merge < 0:
            raise MestreamError(f"merge={self.merge}; expected a number of frames >= 0")
        if self.min_windows < 1:
            raise MestreamError(f"min_windows={self.min_windows}; expected a number of windows >= 1")

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "smooth": self.smooth, "merge": self.merge, "micro_max_s": self.micro_max_s,
                "z": self.z, "history_s": self.history_s, "min_windows": self.min_windows}

    def history(self, fps: float) -> int:
        return max(1, int(round(self.history_s * fps)))

    def level(self, past: np.ndarray) -> float:
        """The threshold given the smoothed scores of the windows before this one (oldest first)."""
        if self.z <= 0 or past.size == 0:
            return self.threshold
        med = float(np.median(past))
        return max(self.threshold, med + self.z * 1.4826 * float(np.median(np.abs(past - med))))


def adaptive_levels(smoothed: np.ndarray, peaks: PeakParams, fps: float) -> np.ndarray:
    """peaks.level() of every window over the (up to) history windows before it, vectorised for the trainer."""
    n = smoothed.size
    if peaks.z <= 0 or n == 0:
        return np.full(n, peaks.threshold)
    h = peaks.history(fps)
    out = np.empty(n)
    head = min(n, h + 1)
    for j in range(head):
        out[j] = peaks.level(smoothed[:j])
    if n > head:
        from numpy.lib.stride_tricks import sliding_window_view

        win = sliding_window_view(smoothed, h)[head - h : n - h]  # windows j - h .. j - 1 for j = head .. n - 1
        med = np.median(win, axis=1)
        mad = np.median(np.abs(win - med[:, None]), axis=1)
        out[head:] = np.maximum(peaks.threshold, med + peaks.z * 1.4826 * mad)
    return out


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def roi_layout(spec: FeatureSpec) -> dict[str, Any]:
    """Boxes (x, y, w, h) on the flow grid, where each lands on the ROI image, and the masked eye boxes."""
    boxes = region_boxes(spec.flow_size)
    half = spec.roi // 2
    return {
        "left": {"box": list(_union(boxes["brow_left"], boxes["eye_left"])), "to": [0, 0, half, half],
                 "mask": list(boxes["eye_left"])},
        "right": {"box": list(_union(boxes["brow_right"], boxes["eye_right"])), "to": [half, 0, half, half],
                  "mask": list(boxes["eye_right"])},
        "mouth": {"box": list(_union(boxes["mouth_left"], boxes["mouth_right"])), "to": [0, half, spec.roi, half],
                  "mask": None},
    }


class SpotFeatures:
    """Aligned crops -> (3, roi, roi) float32 features. One per stream (DIS keeps buffers)."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.motion = RegionMotion(spec.flow_size)
        self.layout = roi_layout(spec)

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """The crop (grey or BGR, any size) on the flow grid, uint8."""
        return self.motion.prepare(crop)

    def pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Features of the motion from prepared crop a to prepared crop b: (3, roi, roi) float32."""
        res = self.motion.residual(a, b)  # (F, F, 2)
        planes = (res[..., 0], res[..., 1], optical_strain(res))
        out = np.zeros((3, self.spec.roi, self.spec.roi), np.float32)
        for part in self.layout.values():
            x, y, w, h = part["box"]
            tx, ty, tw, th = part["to"]
            for c, plane in enumerate(planes):
                patch = np.array(plane[y : y + h, x : x + w], np.float32)
                if part["mask"] is not None:
                    mx, my, mw, mh = part["mask"]
                    patch[max(0, my - y) : max(0, my - y + mh), max(0, mx - x) : max(0, mx - x + mw)] = 0.0
                out[c, ty : ty + th, tx : tx + tw] = cv2.resize(patch, (tw, th), interpolation=cv2.INTER_LINEAR)
        return out


def smooth_scores(scores: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average (edges averaged over what exists), as the stage computes it frame by frame."""
    if width <= 1 or scores.size == 0:
        return np.asarray(scores, np.float64)
    half = width // 2
    c = np.concatenate([[0.0], np.cumsum(np.asarray(scores, np.float64))])
    n = scores.size
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    return (c[hi] - c[lo]) / (hi - lo)


class RunTracker:
    """Smoothed window scores, one at a time -> runs above threshold (gaps up to `merge` bridged).

    Used by the stage online and by the trainer offline (runs_to_intervals), so both pick alike.
    push(j, s) returns the runs it closed as (first window, scores); bridged windows score -inf.
    """

    def __init__(self, peaks: PeakParams, max_len: int) -> None:
        self.peaks = peaks
        self.max_len = max(1, max_len)
        self.start = -1
        self.run: list[float] = []
        self.below = 0

    def push(self, j: int, s: float, level: float | None = None) -> list[tuple[int, np.ndarray]]:
        if s >= (self.peaks.threshold if level is None else level):
            if self.start < 0:
                self.start, self.run = j, []
            self.run.extend([float("-inf")] * self.below)
            self.below = 0
            self.run.append(s)
            return self.close() if len(self.run) >= self.max_len else []
        if self.start < 0:
            return []
        self.below += 1
        return self.close() if self.below > self.peaks.merge else []

    def close(self) -> list[tuple[int, np.ndarray]]:
        out = [(self.start, np.asarray(self.run))] if self.start >= 0 and self.run else []
        self.start, self.run, self.below = -1, [], 0
        return out


def runs_to_intervals(smoothed: np.ndarray, starts: np.ndarray, k: int, peaks: PeakParams, fps: float,
                      max_event_s: float, levels: np.ndarray | None = None) -> list[dict]:
    """Offline peak picking over consecutive windows' smoothed scores: RunTracker's runs, computed fast.

    starts[j] is the first frame of window j (consecutive frames; a face lost or a gap splits a video
    into separate calls); `levels` the per-window thresholds (default adaptive_levels). Only windows above
    their level are visited: a run extends over a gap of at most `merge` windows below it and closes, as
    RunTracker does, at the first window above level that makes it max_event_s long.
    Returns [{"onset", "apex", "offset", "kind", "score"}] in frame numbers.
    """
    if levels is None:
        levels = adaptive_levels(smoothed, peaks, fps)
    above = smoothed >= levels
    max_len = max(1, int(round(max_event_s * fps)))
    runs: list[tuple[int, int]] = []
    start = last = -1
    for a in np.flatnonzero(above):
        if start >= 0 and a - last - 1 > peaks.merge:
            runs.append((start, last))
            start = -1
        if start < 0:
            start = a
        last = a
        if last - start + 1 >= max_len:
            runs.append((start, last))
            start = -1
    if start >= 0:
        runs.append((start, last))
    out = []
    for a, b in runs:
        if b - a + 1 < peaks.min_windows:
            continue
        run = np.where(above[a : b + 1], smoothed[a : b + 1], -np.inf)
        out.append(make_interval(run, int(starts[a]), k, peaks, fps))
    return out


def make_interval(run: np.ndarray, first_start: int, k: int, peaks: PeakParams, fps: float) -> dict:
    """A run of window scores starting at window `first_start` -> an interval in frames."""
    shift = k // 2
    onset = first_start + shift
    offset = first_start + len(run) - 1 + shift
    # the window that scores highest spans the rise: it ends about at the apex
    apex = min(max(first_start + int(np.argmax(run)) + k, onset), offset)
    kind = "micro" if (offset - onset + 1) / fps <= peaks.micro_max_s else "macro"
    return {"onset": onset, "apex": apex, "offset": offset, "kind": kind, "score": float(run.max())}


def spotter_from_artifact(meta) -> tuple[FeatureSpec, PeakParams]:
    """Feature and peak parameters recorded in a softnet artifact's metadata (engines.artifact.Artifact)."""
    where = meta.path or "artifact"
    if meta.family != FAMILY:
        raise MestreamError(
            f"{where} is a {meta.family!r} model; the learned spotter needs a {FAMILY!r} artifact made by "
            "`mestream train-spotter`"
        )
    try:
        p = dict(meta.flow["params"])
        spec = FeatureSpec(int(p["flow_size"]), int(p["roi"]), float(p["lag_s"]))
        sel = dict(meta.selection["peaks"])
        peaks = PeakParams(float(sel["threshold"]), int(sel["smooth"]), int(sel["merge"]), float(sel["micro_max_s"]),
                           float(sel.get("z", 0.0)), float(sel.get("history_s", 3.0)), int(sel.get("min_windows", 1)))
    except (KeyError, TypeError, ValueError) as exc:
        raise MestreamError(
            f"{where}: softnet metadata lacks {exc} (flow.params / selection.peaks); re-make it with `mestream train-spotter`"
        ) from None
    if p.get("roi_layout") not in (None, roi_layout(spec)):
        raise MestreamError(
            f"{where}: its ROI layout differs from this mestream's facial regions (edge/perception/align.py); "
            "re-train it with `mestream train-spotter`"
        )
    return spec, peaks


@dataclass
class _Frame:
    seq: int
    t_ns: int
    small: np.ndarray
    crop: np.ndarray
    color: np.ndarray | None
    box: list


_WARNED: set[str] = set()  # artifacts already warned about: the stage opens one spotter per face


def warn_if_synthetic(meta, where: str) -> None:
    """One warning per artifact trained on `mestream synth` videos only: such a spotter misses most real
    micro-expressions (benchmarks/results/spotting_real.md)."""
    if (meta.training or {}).get("dataset") != "synth" or where in _WARNED:
        return
    _WARNED.add(where)
    log.warning('spot artifact %s was trained on synthetic videos only; on real faces it misses most '
                'micro-expressions: use method = "regional" (the default) or an artifact trained on real recordings '
                '(SPOTTER_CARD.md)', where)


class LearnedSpotter:
    """spot stage with a softnet artifact: "face" messages in, "interval" messages (as RegionalSpotter) out."""

    name = "spot"

    def __init__(self, params: SpotParams, record_trace: bool = False) -> None:
        if not params.artifact:
            raise MestreamError('spot method "learned" needs artifact = PATH of a softnet .onnx made by `mestream train-spotter`')
        if not Path(params.artifact).is_file():
            raise MestreamError(f"spot artifact {params.artifact} does not exist; give a .onnx made by `mestream train-spotter`")
        self.params = params
        self.trace: list[tuple[int, float, float]] | None = [] if record_trace else None
        self._engine = None
        self.spec: FeatureSpec | None = None
        self.peaks: PeakParams | None = None
        self._reset()

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> None:
        from engines.base import open_engine

        self._engine = open_engine(self.params.artifact)  # ONNX Runtime on one thread (engines/ort.py says why)
        self.spec, self.peaks = spotter_from_artifact(self._engine.meta)
        warn_if_synthetic(self._engine.meta, self.params.artifact)
        self._features = SpotFeatures(self.spec)
        self._reset()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self._engine = None
        self._reset()

    def _reset(self) -> None:
        self._frames: deque[_Frame] = deque()
        self._scores: deque[float] = deque(maxlen=self.peaks.smooth if self.peaks else 1)  # latest raw scores
        self._n = -1  # frames since the window (re)started; window j starts at frame j
        self._w = 0  # window scores computed
        self._fps: float | None = None
        self._last_seq: int | None = None
        self._runs: RunTracker | None = None
        self._past: deque[float] = deque()  # smoothed scores of the last history windows (adaptive threshold)

    def _restart(self, reason: str) -> list[Message]:
        out = self._close_runs()
        had = self._n >= 0
        self._reset()
        return out + ([status(self.name, "restart", reason)] if had else [])

    # -- per frame -----------------------------------------------------------------------------------
    def process(self, msg: Message) -> list[Message]:
        if msg.topic != "face":
            return []
        if self._engine is None:
            self.open()
        h = msg.header
        out: list[Message] = []
        if not h.get("found", False) or "crop" not in msg.arrays:
            out += self._close_runs()  # the face is gone: what was under way ends here
            self._reset()
            self._last_seq = h.get("seq")
            return out
        reason = restart_reason(h, self._last_seq, self._n >= 0, self._fps)
        if reason is not None:
            out += self._restart(reason)
        self._last_seq = int(h["seq"])
        if self._fps is None:
            self._fps = starting_fps(h)
            self._runs = RunTracker(self.peaks, int(round(self.params.max_event_s * self._fps)))
            self._past = deque(maxlen=self.peaks.history(self._fps))
        return out + self._step(msg)

    def _step(self, msg: Message) -> list[Message]:
        spec, peaks, fps = self.spec, self.peaks, self._fps
        k = spec.k(fps)
        half = peaks.smooth // 2
        self._n += 1
        crop = msg.arrays["crop"]
        self._frames.append(_Frame(int(msg.header["seq"]), int(msg.header.get("t_capture_ns", 0)),
                                   self._features.prepare(crop), crop, msg.arrays.get("crop_color"),
                                   list(msg.header.get("box", []))))
        # kept: the lag, the smoothing delay, a bridged gap and the longest run, back from the newest frame
        while len(self._frames) > k + half + peaks.merge + self._runs.max_len + 2:
            self._frames.popleft()
        signal = level = float("nan")
        out: list[Message] = []
        if self._n >= k:
            x = self._features.pair(self._frame(self._n - k).small, self._frame(self._n).small)
            self._scores.append(float(self._engine.infer({INPUT_NAME: x[None]})[OUTPUT_NAME].reshape(-1)[0]))
            self._w += 1
            j = self._w - 1 - half  # the newest window whose smoothing neighbourhood is complete
            if j >= 0:
                signal = self._smoothed(j)
                level, runs = self._push(j, signal)
                out += self._emit(runs)
        if self.trace is not None:
            self.trace.append((int(msg.header["seq"]), signal, level))
        msg.header["spot_signal"] = None if np.isnan(signal) else round(signal, 5)  # for the preview tap
        msg.header["spot_threshold"] = None if np.isnan(level) else round(level, 5)
        return out

    def _push(self, j: int, s: float) -> tuple[float, list[tuple[int, np.ndarray]]]:
        level = self.peaks.level(np.asarray(self._past, np.float64))
        self._past.append(s)
        return level, self._runs.push(j, s, level)

    def _smoothed(self, j: int) -> float:
        """Mean of the raw scores of windows max(0, j - half) .. min(j + half, w - 1): smooth_scores' rule."""
        half = self.peaks.smooth // 2
        lo, hi = max(0, j - half), min(j + half, self._w - 1)
        newest = self._w - 1
        vals = list(self._scores)
        return float(np.mean(vals[len(vals) - 1 - (newest - lo) : len(vals) - (newest - hi)]))

    def _frame(self, n: int) -> _Frame:
        first = self._n - len(self._frames) + 1
        return self._frames[min(max(0, n - first), len(self._frames) - 1)]

    def _close_runs(self) -> list[Message]:
        return self._emit(self._runs.close()) if self._runs is not None else []

    def _emit(self, runs: list[tuple[int, np.ndarray]]) -> list[Message]:
        out = []
        k = self.spec.k(self._fps)
        for start, run in runs:
            if len(run) < self.peaks.min_windows:
                continue
            iv = make_interval(run, start, k, self.peaks, self._fps)
            onset, apex, offset = (self._frame(iv[key]) for key in ("onset", "apex", "offset"))
            log.debug("%s interval seq %d..%d apex %d score %.3f", iv["kind"], onset.seq, offset.seq, apex.seq, iv["score"])
            out.append(interval_message(iv["kind"], {"score": round(iv["score"], 4), "method": "learned"}, self._fps,
                                        onset, apex, offset))
        return out

    def flush(self) -> list[Message]:
        """End of stream: the last windows are smoothed over what exists, and an open run is closed."""
        out: list[Message] = []
        if self._runs is None:
            return out
        for j in range(max(0, self._w - self.peaks.smooth // 2), self._w):
            out += self._emit(self._push(j, self._smoothed(j))[1])
        return out + self._close_runs()
