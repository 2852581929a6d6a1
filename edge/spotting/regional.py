"""The training-free regional spotter (spot stage, method "regional"). Consumes "face" messages, emits "interval" messages.

A ring buffer holds the aligned crops of the current window. Per frame the lagged motion signal s(t)
(regional residual motion between t - k and t, k = lag_s at the stream's real fps) is compared with an
adaptive threshold over the quiet part of the window. When it crosses, the spotter takes the frame just
before the motion as a reference and follows every frame's displacement from it: the displacement peaks, the
onset is the last frame before the peak still at rest, and the apex sent on (the frame the classifier's flow runs
to) the first frame from the onset at apex_frac of the peak. The event ends when the face
has stopped moving for settle_s (s back at the noise level), whatever state it is then in: after a real
micro-expression the face seldom returns exactly to where it started (benchmarks/results/spotting_real.md);
or earlier, when the displacement has come back to rest. A face held far away from the reference (a smile)
is followed on as a macro-expression until it comes back (or max_event_s). Micro or macro follows the
datasets' rule: at most 0.5 s long, or rising to its apex within 0.25 s. An event that ended still displaced is
remembered for release_s: when the next one brings the face back to where it was before it, the two are one held
expression, published again from the first onset with "revises" naming the first event; one that comes back
to rest within micro_max_s of its onset without firing an event (it paused at its apex) is revised the same way. An event during which
the head moved far more than the face (head_ratio) is the leak of that head motion and is dropped.

Quiet frames cost one dense flow (t - k -> t); frames inside an event two, the lagged one and one from the
event's reference. When an event starts, its reference is taken lookback_s before the trigger's lag frame (a
slow onset stays under the threshold), the frames up to k after the reference keep the lagged scores they
already had (their lag frame lies before the reference, where nothing moved) and the rest are measured from
the reference once: a burst of lookback_s worth of flows per event. A moving head costs a second flow on the
frames where it moved (edge/spotting/signal.py RegionMotion.residual).

Above SpotParams.max_rate_hz (a 200 fps camera) only every stride-th frame is analysed, and the window
runs at the source's rate over the stride: intervals still name source frames, now analysed ones. A 5 ms
step resolves no expression better than a 17 ms one, while every analysed frame costs a flow, and the
maximum of a noisy displacement over 6.7 times more frames is higher (benchmarks/results/spotting_fps.md).

Blinks are masked: while an eye's aspect ratio (from the landmarks) drops or an eye region sweeps far,
the eye and brow regions leave the signal; an event a blink fired is kept only when the other regions moved
well over the threshold (a micro-expression with a blink inside, SpotParams.blink_keep). A lost face, a gap in
the frame sequence or a change of fps restarts the window. `trace` (when asked for) keeps (seq, s, threshold) per frame for plots; every consumed face
message gets header fields "spot_signal" and "spot_threshold" (None while warming up) for the preview.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge.array_ring import ArrayRing, ValueWindow
from edge.messages import Message, status
from edge.spotting.continuity import restart_reason, starting_fps
from edge.spotting.intervals import (
    has_returned,
    interval_message,
    kind_of,
    median,
    onset_index,
    reached_index,
    robust_threshold,
)
from edge.spotting.params import SpotParams
from edge.spotting.signal import BLINK_MASK, LOWER_FACE, RegionMotion, eye_aspect_ratio, is_lid_sweep

log = logging.getLogger(__name__)


@dataclass
class _Frame:
    n: int  # position since the window (re)started
    seq: int
    t_ns: int
    small: np.ndarray  # crop on the flow grid
    crop: np.ndarray  # (S, S) uint8 aligned grey crop
    color: np.ndarray | None
    box: list
    blink: bool = False
    motion: np.ndarray | None = None  # region scores of this frame's flow: lagged when quiet, from ref in an event
    signal: float = 0.0  # s(t) this frame gave (weighted, eyes masked as they were)
    head: float = 0.0  # how far the head moved in the lagged flow (affine model's reach, flow-grid px)


@dataclass
class _Event:
    ref: int  # n of the reference frame (at rest, just before the motion)
    threshold: float  # T when it triggered: the peak must reach it
    noise: float  # displacement that still counts as at rest: the quiet signal's median + 3 sigma
    rest: float  # the same, for placing the onset: median + onset_rest_z sigma (edge/spotting/params.py)
    d: list = field(default_factory=list)  # per-region displacement from ref, for n = ref + 1 ...
    measured: int = 0  # d[:measured] are lagged scores (first k frames after ref), the rest flows from ref
    eyes_masked: bool = False
    by_eye: bool = False  # the trigger's largest region was an eye or a brow (regions a blink masks)
    quiet_run: int = 0  # consecutive frames, up to now, whose lagged signal is back at the noise level
    candidate: tuple[int, int] | None = None  # (onset n, apex n) last sent as a "candidate"
    held: bool = False  # the face stopped moving while held far from the reference: a macro-expression

    @property
    def blink_onset(self) -> bool:
        """A lid sweep's first frames: fired by an eye or brow region, then masked as a blink. The sweep is
        not yet large enough to be called a blink when it fires (at 200 fps 10-30 ms into it), and what the
        unmasked regions then show is mostly the blink's leak through the flow (_only_a_blink)."""
        return self.by_eye and self.eyes_masked

    def combined(self) -> np.ndarray:
        d = np.asarray(self.d)  # (frames, regions)
        if self.eyes_masked:
            d = d[:, ~BLINK_MASK]
        return d.max(axis=1)


_UNCHECKED = object()  # _close_event: whether the event releases an earlier one is still to be looked at


@dataclass(frozen=True)
class _Displaced:
    """An event that ended away from its reference: its release may follow (SpotParams.release_s)."""
    ref: int
    onset: int
    apex: int
    end: int
    peak: float
    noise: float  # the event's rest level: back within max(return_frac x peak, noise) is back at rest
    eyes_masked: bool
    scores: dict


class RegionalSpotter:
    name = "spot"

    def __init__(self, params: SpotParams | None = None, record_trace: bool = False) -> None:
        self.params = params or SpotParams()
        self.trace: list[tuple[int, float, float]] | None = [] if record_trace else None
        self._meter: RegionMotion | None = None  # the one flow per frame
        self._rings: tuple[ArrayRing, ArrayRing] | None = None  # crop, colour crop of the window (edge/array_ring.py)
        self._reset()

    @property
    def stride(self) -> int:
        """Every how many frames the current window analyses one (1 until a frame has told the rate)."""
        return self._stride

    # -- lifecycle -----------------------------------------------------------------------------------
    def open(self) -> None:
        self._make_meters()
        self._reset()

    def close(self) -> None:
        self._meter = None
        self._rings = None
        self._frames = deque()

    def _reset(self) -> None:
        self._frames: deque[_Frame] = deque()
        self._n = -1
        self._fps: float | None = None  # the rate the window is analysed at: the source's, over the stride
        self._source_fps: float | None = None
        self._stride = 1  # analyse every stride-th frame (SpotParams.max_rate_hz)
        self._arrived = 0  # frames received since the window (re)started, analysed or not
        self._last_seq: int | None = None
        # the quiet frames' signal (history_s of it) and per-region lagged scores, and from those each
        # region's noise weight; made at the first quiet frame, when the window's fps is known
        self._quiet: ValueWindow | None = None
        self._quiet_regions: ValueWindow | None = None
        self._weights: np.ndarray | None = None
        self._quiet_seen = 0
        self._ears: deque[float] = deque()
        self._ear_median = 0.0  # of _ears, refreshed every few frames (it moves slowly; a median per frame shows)
        self._last_blink = -(10**9)
        self._last_end = -(10**9)
        self._event: _Event | None = None
        self._displaced: _Displaced | None = None

    def _restart(self, reason: str) -> list[Message]:
        had_window = self._n >= 0
        self._reset()
        return [status(self.name, "restart", reason)] if had_window else []

    # -- per frame -------------------------------------------------------------------------------------
    def process(self, msg: Message) -> list[Message]:
        if msg.topic != "face":
            return []
        h = msg.header
        out: list[Message] = []
        if not h.get("found", False) or "crop" not in msg.arrays:
            self._reset()  # the track stage reports face lost; the window simply starts again
            self._last_seq = h.get("seq")
            return out
        reason = restart_reason(h, self._last_seq, self._n >= 0, self._source_fps)
        if reason is not None:
            out += self._restart(reason)
        self._last_seq = int(h["seq"])
        if self._fps is None:
            self._source_fps = starting_fps(h)
            self._stride = self.params.stride(self._source_fps)
            self._fps = self._source_fps / self._stride
        self._arrived += 1
        if (self._arrived - 1) % self._stride:
            return out  # between analysed frames: the motion is measured on the next one, over the lag
        out += self._step(msg)
        return out

    def _step(self, msg: Message) -> list[Message]:
        p, fps = self.params, self._fps
        if self._meter is None:  # used without open(), as a plain object
            self._make_meters()
        k = p.frames(p.lag_s, fps)
        self._n += 1
        n = self._n
        keep = k + 2 + p.frames(p.max_event_s, fps)
        if self._rings is None or self._rings[0].slots != keep + 1:  # one slot more than the window keeps
            self._rings = (ArrayRing(keep + 1), ArrayRing(keep + 1))
        crop = self._rings[0].put(msg.arrays["crop"])  # a copy: the received message is not held for seconds
        color = msg.arrays.get("crop_color")
        frame = _Frame(
            n=n,
            seq=int(msg.header["seq"]),
            t_ns=int(msg.header.get("t_capture_ns", 0)),
            small=self._meter.prepare(crop),
            crop=crop,
            color=None if color is None else self._rings[1].put(color),
            box=list(msg.header.get("box", [])),
        )
        self._frames.append(frame)
        while len(self._frames) > keep:
            self._frames.popleft()

        # blink: eye aspect ratio against its running median, or an eye region sweeping far
        ear = eye_aspect_ratio(msg.arrays.get("landmarks"))
        history = p.frames(p.history_s, fps)
        if ear is not None:
            if len(self._ears) >= 5 and ear < p.blink_ear_ratio * self._ear_median:
                frame.blink = True
            else:
                self._ears.append(ear)
                while len(self._ears) > history:
                    self._ears.popleft()
                if len(self._ears) <= 10 or n % 5 == 0:
                    self._ear_median = median(np.asarray(self._ears))
        if n < k:
            if self.trace is not None:
                self.trace.append((frame.seq, float("nan"), float("inf")))
            return []
        ev = self._event
        lag_field = self._meter.residual(self._frame(n - k).small, frame.small)
        frame.head = self._meter.last_reach
        lagged = self._meter.field_scores(lag_field)
        if ev is None:
            frame.motion = lagged
        else:
            # during an event a second flow, from the reference, follows the displacement; the lagged flow
            # above stays a true t - k -> t flow, so "the face has stopped moving" is judged against the
            # quiet signal's own noise (a difference of two fields from the reference is sqrt(2) noisier)
            frame.motion = self._meter.field_scores(self._meter.residual(self._frame(ev.ref).small, frame.small))
        if is_lid_sweep(lagged, p.blink_px, self._meter.lid_drop(lag_field), p.blink_drop_px):
            frame.blink = True
        if frame.blink:
            self._last_blink = n
        eyes_masked = n - self._last_blink <= k + p.frames(p.blink_margin_s, fps)
        w = self._weights if self._weights is not None else 1.0
        s = frame.signal = float(((lagged / w)[~BLINK_MASK] if eyes_masked else lagged / w).max())

        if self._quiet is None:
            self._quiet = ValueWindow(history)
            self._quiet_regions = ValueWindow(history, lagged.size, np.float32)
        warm = len(self._quiet) >= p.frames(p.warmup_s, fps)
        threshold = robust_threshold(self._quiet.values, p.z, p.floor_px) if warm else float("inf")
        if self.trace is not None:
            self.trace.append((frame.seq, s, threshold))
        # for the preview tap (edge/preview/tap.py): the consumed face message carries the signal it gave
        msg.header["spot_signal"] = round(s, 5)
        msg.header["spot_threshold"] = round(threshold, 5) if np.isfinite(threshold) else None

        if self._event is None:
            out = self._watch_release(n) if self._displaced is not None else []
            refractory = n - self._last_end <= p.frames(p.refractory_s, fps)
            if warm and not refractory and s > threshold:
                # which region fired: one a blink masks, unless the eyes were masked already
                by_eye = not eyes_masked and bool(BLINK_MASK[int(np.argmax(lagged / w))])
                self._start_event(n, k, threshold, robust_threshold(self._quiet.values, 3.0, 0.0), by_eye)
            else:
                self._quiet.push(s)
                self._quiet_regions.push(lagged)
                self._quiet_seen += 1
                if self._quiet_seen % 8 == 0 or self._weights is None:
                    self._update_weights()  # every few quiet frames: the noise levels move slowly
                return out
            return out + self._follow_event(n, k, eyes_masked)
        else:
            ev.d.append(frame.motion / self._w())
            ev.quiet_run = ev.quiet_run + 1 if s <= ev.noise else 0
        return self._follow_event(n, k, eyes_masked)

    def _make_meters(self) -> None:
        p = self.params
        self._meter = RegionMotion(p.flow_size, p.patch, recompensate_px=p.recompensate_px, refine_iters=p.refine_iters,
                                   band=(p.band_side, p.band_top, p.band_bottom))

    def _w(self) -> np.ndarray | float:
        return self._weights if self._weights is not None else 1.0

    def _update_weights(self) -> None:
        """Each region's noise level (a high quantile of its quiet lagged scores) over the regions' median:
        a region that a face's texture, hair or compression makes noisy is scaled down to the others, so
        the one threshold on the largest region no longer fires on that region's noise."""
        q = self._quiet_regions
        if len(q) < max(10, self.params.frames(self.params.warmup_s, self._fps)):
            return
        level = np.percentile(q.values, 90, axis=0)
        self._weights = np.clip(level / max(float(np.median(level)), 1e-6), 0.5, 4.0).astype(np.float32)

    def _frame(self, n: int) -> _Frame:
        return self._frames[n - self._frames[0].n]

    def _seconds(self, a: int, b: int) -> float:
        """Time from frame a to frame b in frames over fps: capture stamps of a file read --fast are
        processing times, not media times."""
        return (b - a) / self._fps

    def _start_event(self, n: int, k: int, threshold: float, noise: float, by_eye: bool) -> None:
        # The reference is taken lookback_s before the lag frame of the trigger (never inside the last
        # event): an expression that rises slowly stays under T on its way up and triggers only on its way
        # back, and a reference taken then would be its apex, from which the face never "returns".
        back = self.params.frames(self.params.lookback_s, self._fps) if self.params.lookback_s > 0 else 0
        ref = max(n - k - back, self._last_end, self._frames[0].n)
        rest = robust_threshold(self._quiet.values, self.params.onset_rest_z, 0.0)
        ev = _Event(ref=ref, threshold=threshold, noise=noise, rest=rest, by_eye=by_eye)
        for j in range(ref + 1, n + 1):
            frame = self._frame(j)
            if j > ref + k:
                # its lag frame lies inside the motion: measure it from the reference (only after a walk back)
                frame.motion = self._meter.field_scores(self._meter.residual(self._frame(ref).small, frame.small))
            # the others keep their lagged scores: their lag frame is at rest, before the reference
            motion = frame.motion  # None only in the first k frames of a window (no lag frame yet)
            ev.d.append(motion / self._w() if motion is not None else np.zeros_like(self._frame(n).motion))
        # d[:measured] are lagged scores; the frames after them were measured from the reference (the
        # lookback's flows, then one per frame), so they can confirm the event, even one that is over by
        # its trigger (a fast fall after a slow rise)
        ev.measured = min(k, len(ev.d))
        self._event = ev

    def _follow_event(self, n: int, k: int, eyes_masked: bool) -> list[Message]:
        p, ev = self.params, self._event
        if eyes_masked or any(self._frame(j).blink for j in range(ev.ref, n + 1)):
            ev.eyes_masked = True
        d = ev.combined()
        if has_returned(d, p.return_frac, ev.noise) or self._seconds(ev.ref, n) > p.max_event_s:
            return self._close_event(d)
        settle = max(1, p.frames(p.settle_s, self._fps))
        if ev.quiet_run < settle:
            return self._candidate(d)
        # The face has stopped moving for settle_s. Back where it was before the last event, which it had left
        # displaced, it is that expression's release, however far from this event's own reference (a plateau):
        # checked once, when the face stops (one flow).
        released = self._released_from(ev, n) if ev.quiet_run == settle else _UNCHECKED
        if released in (None, _UNCHECKED) and d[-1] >= p.hold_px and d[-1] >= p.hold_frac * float(d.max()):
            ev.held = True  # held far away from the reference (a smile): followed on until it comes back
            return self._candidate(d)
        # Otherwise the expression is over, whatever state the face is in now (a real face seldom comes back
        # exactly to its pre-onset state). The last moving frame's lagged signal saw motion up to offset_lag of
        # a lag window before it.
        last_moving = n - ev.quiet_run
        apex_n = ev.ref + 1 + int(np.argmax(d[: last_moving - ev.ref]))
        end = max(last_moving - int(round(p.offset_lag * k)), apex_n + 1)
        return self._close_event(d[: end - ev.ref], released)

    def _candidate(self, d: np.ndarray) -> list[Message]:
        """Speculation: once the displacement has fallen to candidate_frac of its peak, the apex and the onset
        (which depend only on d up to the peak and on the peak) are what _close_event will take
        unless a higher peak comes, so send them now: infer computes the flow while the face returns to rest
        and publishes at once when the "interval" with the same onset and apex arrives."""
        p, ev = self.params, self._event
        apex_i = int(np.argmax(d))
        peak = float(d[apex_i])
        confirm = d[ev.measured :] if len(d) > ev.measured else d[-1:]
        if (apex_i == len(d) - 1 or d[-1] > p.candidate_frac * peak or float(confirm.max()) < ev.threshold
                or self._only_a_blink(ev, confirm)):
            return []
        onset_n, apex_n, flow_onset_n = self._points(ev, d, apex_i)
        if ev.candidate == (onset_n, apex_n):
            return []
        ev.candidate = (onset_n, apex_n)
        onset, apex, flow_onset = self._frame(onset_n), self._frame(apex_n), self._frame(flow_onset_n)
        sent = interval_message("micro", {"score": round(peak / max(ev.threshold, 1e-6), 3)}, self._source_fps, onset, apex,
                                apex, flow_onset)
        arrays = {name: a.copy() for name, a in sent.arrays.items()}  # its crops are ring slots, soon reused
        return [Message("candidate", {k: v for k, v in sent.header.items() if k not in ("kind", "offset")}, arrays)]

    def _points(self, ev: _Event, d: np.ndarray, apex_i: int) -> tuple[int, int, int]:
        """Frame numbers of the onset, the apex an interval carries and the onset crop's frame, from the
        displacements d (d[j] is frame ev.ref + 1 + j) peaking at apex_i: one place, so that a candidate and
        its interval name the same frames."""
        p = self.params
        padded = np.concatenate([[0.0], d])  # index 0 = the reference frame
        onset_i = onset_index(padded, apex_i + 1, p.onset_frac, ev.rest)
        apex_j = reached_index(d, p.apex_frac, max(onset_i - 1, 0))
        flow_onset_i = onset_index(padded, apex_i + 1, p.flow_onset_frac, ev.rest)
        return ev.ref + onset_i, ev.ref + 1 + apex_j, ev.ref + flow_onset_i

    def _only_a_blink(self, ev: _Event, confirm: np.ndarray) -> bool:
        """An event with a blink inside whose lower face moved less than blink_lower x T, or a blink's onset whose
        unmasked regions moved less than blink_keep x T: the blink's leak through the flow. Above both, a
        micro-expression with a blink inside (CASME II has many) is kept."""
        p = self.params
        if not ev.eyes_masked:
            return False
        d = np.asarray(ev.d)
        rows = d[ev.measured :] if len(d) > ev.measured else d[-1:]
        if float(rows[:, LOWER_FACE].max()) < p.blink_lower * ev.threshold:
            return True
        return ev.blink_onset and float(confirm.max()) < p.blink_keep * ev.threshold

    def _close_event(self, d: np.ndarray, released: _Displaced | None | object = _UNCHECKED) -> list[Message]:
        """released: the displaced event this one releases, None, or _UNCHECKED (look, at the offset frame)."""
        p, ev = self.params, self._event
        self._event = None
        end = ev.ref + len(d)  # n of the offset frame
        self._last_end = end
        apex_i = int(np.argmax(d))
        peak = float(d[apex_i])
        # the frames up to the trigger carry lagged scores, above T by construction at the trigger itself:
        # a real motion must also be seen moved away from the reference by the flows after it
        confirm = d[ev.measured :] if len(d) > ev.measured else d[-1:]
        if float(confirm.max()) < ev.threshold:
            return []  # the trigger was noise or a masked blink: nothing moved away from the reference
        if self._only_a_blink(ev, confirm):
            return []
        if p.head_ratio > 0 and max(self._frame(j).head for j in range(ev.ref + 1, end + 1)) > p.head_ratio * peak:
            return []  # the head moved far more than the face did: what is left is the head motion's leak
        onset, apex, flow_onset = (self._frame(n) for n in self._points(ev, d, apex_i))
        offset = self._frame(end)
        # the rise that decides the kind ends where the displacement first reaches rise_frac of its peak: after
        # its apex a real face drifts on slowly, and the argmax then comes late
        risen = ev.ref + 1 + int(np.flatnonzero(d >= p.rise_frac * peak)[0])
        kind = "macro" if ev.held else kind_of(self._seconds(onset.n, offset.n), self._seconds(onset.n, max(risen, onset.n)),
                                               p.micro_max_s, p.micro_rise_s)
        scores = {"score": round(peak / max(ev.threshold, 1e-6), 3), "peak_px": round(peak, 4)}
        if released is _UNCHECKED:
            released = self._released_from(ev, end)
        self._displaced = None
        if released is not None:
            # one expression from the first onset: held, so micro only if the whole of it was short
            onset, apex = self._frame(released.onset), self._frame(released.apex)
            flow_onset = onset
            kind = "micro" if self._seconds(onset.n, offset.n) <= p.micro_max_s else "macro"
        elif not ev.held and float(d[-1]) >= p.release_frac * peak:
            self._displaced = _Displaced(ev.ref, onset.n, apex.n, end, peak, ev.noise, ev.eyes_masked, scores)
        log.debug("%s interval seq %d..%d apex %d peak %.3f", kind, onset.seq, offset.seq, apex.seq, peak)
        return [self._interval(kind, scores, onset, apex, offset, released, flow_onset)]

    def _interval(self, kind: str, scores: dict, onset: _Frame, apex: _Frame, offset: _Frame,
                  revised: _Displaced | None = None, flow_onset: _Frame | None = None) -> Message:
        """The "interval" message, naming the displaced event it revises if any."""
        out = interval_message(kind, scores, self._source_fps, onset, apex, offset, flow_onset)
        if revised is not None:
            out.header["revises"] = {"onset": self._frame(revised.onset).seq, "offset": self._frame(revised.end).seq}
        out.arrays = {name: a.copy() for name, a in out.arrays.items()}  # its crops are ring slots, soon reused
        return out

    def _moved_since(self, ref: int, n: int, eyes_masked: bool) -> float:
        """How far frame n is from frame ref (largest weighted region score; one flow)."""
        back = self._meter.field_scores(self._meter.residual(self._frame(ref).small, self._frame(n).small)) / self._w()
        return float((back[~BLINK_MASK] if eyes_masked else back).max())

    def _watch_release(self, n: int) -> list[Message]:
        """A micro-expression that ended displaced because the face paused at its apex (a slow, even one: the
        lagged signal is flat there) may still come back within micro_max_s of its onset, too slowly to fire an
        event of its own: frame n back at rest from its reference is its offset, published as a revision of the
        event (one flow a frame while watched)."""
        p, old = self.params, self._displaced
        if old.ref < self._frames[0].n or self._seconds(old.onset, n) > p.micro_max_s:
            return []  # too late for a micro-expression; a held one's release is _released_from's
        if self._moved_since(old.ref, n, old.eyes_masked) > max(p.return_frac * old.peak, old.noise):
            return []
        self._displaced = None
        # at most micro_max_s from onset to offset: micro by the datasets' rule
        return [self._interval("micro", old.scores, self._frame(old.onset), self._frame(old.apex), self._frame(n), old)]

    def _released_from(self, ev: _Event, end: int) -> _Displaced | None:
        """The displaced event this one brought the face back from, if any: one flow from its reference."""
        p, old = self.params, self._displaced
        if old is None or old.ref < self._frames[0].n or self._seconds(old.end, ev.ref) > p.release_s:
            return None
        return old if self._moved_since(old.ref, end, ev.eyes_masked) <= p.return_frac * old.peak else None

    def flush(self) -> list[Message]:
        """End of stream: an expression still under way is closed at the last frame."""
        if self._event is None or not self._event.d:
            return []
        return self._close_event(self._event.combined())
