"""From a motion signal to intervals: the adaptive threshold and where an event starts, peaks and ends.

The spotter triggers on the lagged signal s(t) (motion between t - k and t) crossing a threshold computed
over the quiet part of the window, then follows the displacement d(j) of every frame j from a reference
frame taken just before the motion began. d peaks at apex_index; the onset is the last frame before
the peak still near the reference, the offset the first one after it that has come back. The apex an
interval carries is reached_index's (SpotParams.apex_frac). An expression that does not come back within
0.5 s is a macro-expression.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.messages import Message

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def median(values: np.ndarray) -> float:
    """np.median of a 1-D array, to the bit, without its generic machinery (axes, NaN checks, a mean of
    the middle two): the spotter takes several per frame, and that machinery cost more than the sort."""
    n = values.size
    k = n // 2
    if n % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


def robust_threshold(values: np.ndarray, z: float, floor: float) -> float:
    """max(median + z * sigma_MAD, floor) over the quiet signal seen so far."""
    if values.size == 0:
        return float("inf")
    med = median(values)
    mad = median(np.abs(values - med))
    return max(med + z * MAD_TO_SIGMA * mad, floor)


def apex_index(d: np.ndarray) -> int:
    return int(np.argmax(d))


def reached_index(d: np.ndarray, frac: float, start: int = 0) -> int:
    """The first index from `start` on whose displacement reaches `frac` of the peak (the peak's own index
    when frac is 1). `start` at or before the peak."""
    if frac >= 1.0:
        return apex_index(d)
    return start + int(np.flatnonzero(d[start:] >= frac * float(d.max()))[0])


def rest_level(d: np.ndarray, return_frac: float, noise: float) -> float:
    """Displacement counted as "at rest": a fraction of the peak, but never below the noise level."""
    return max(return_frac * float(d[apex_index(d)]), noise)


def has_returned(d: np.ndarray, return_frac: float, noise: float) -> bool:
    """True when the last displacement is back at rest, after the peak."""
    apex = apex_index(d)
    return apex < d.size - 1 and d[-1] <= rest_level(d, return_frac, noise)


def onset_index(d: np.ndarray, apex: int, return_frac: float, noise: float) -> int:
    """Last index at or before the apex whose displacement is still at rest."""
    below = np.flatnonzero(d[: apex + 1] <= rest_level(d, return_frac, noise))
    return int(below[-1]) if below.size else 0


def kind_of(duration_s: float, rise_s: float, micro_max_s: float, micro_rise_s: float) -> str:
    """The datasets' rule (CASME II, SAMM): a micro-expression lasts at most micro_max_s, or its onset-to-apex
    phase lasts at most micro_rise_s; an expression that does neither is macro. micro_rise_s = 0 leaves
    the duration alone to decide."""
    return "micro" if duration_s <= micro_max_s or (micro_rise_s > 0 and rise_s <= micro_rise_s) else "macro"


def interval_message(kind: str, scores: dict[str, Any], fps: float, onset, apex, offset, flow_onset=None) -> Message:
    """The "interval" message both spotters send: header (kind, their `scores` fields, fps, face box and
    the seq / capture time of onset, apex, offset, and of flow_onset, the frame whose crop is sent as the onset
    crop: the onset's unless given) and the onset and apex crops (plus the apex in colour where the face stage
    sent one). The frames are any objects with seq, t_ns, box, crop and color."""
    flow_onset = onset if flow_onset is None else flow_onset
    header = {
        "kind": kind,
        **scores,
        "fps": fps,
        "box": apex.box,
        "onset": {"seq": onset.seq, "t_capture_ns": onset.t_ns},
        "apex": {"seq": apex.seq, "t_capture_ns": apex.t_ns},
        "offset": {"seq": offset.seq, "t_capture_ns": offset.t_ns},
        "flow_onset": {"seq": flow_onset.seq, "t_capture_ns": flow_onset.t_ns},
    }
    arrays = {"onset": flow_onset.crop, "apex": apex.crop}
    if apex.color is not None:
        arrays["apex_color"] = apex.color
    return Message("interval", header, arrays)
