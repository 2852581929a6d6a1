"""Real micro-expression clips turned into spotting test videos with known truth.

A dataset clip holds only a micro-expression's onset..offset frames (CASME II Cropped: 200 fps face crops).
To spot it as a live camera would see it, the clip is framed in a 640x480 picture (the crop's border
replicated outwards, so the face sits at the size the camera recorded it) and held still before and
after: its first frame for `hold_s` before, its last frame for `hold_s` after, each held frame with fresh
Gaussian noise at the clip's own frame-to-frame noise level, so the held stretches look like a still
face on that camera rather than a frozen picture. Protocols:

- "still": exactly that (the protocol of issue 17).
- "drift": the same, plus a slow head drift over the whole video (a smooth random walk of translation
  and roll, up to about 1 px and 0.3 degrees): a seated person is never perfectly still, and the face
  after the clip's offset is not the face before its onset.
- "far": the same as "still" with the face at FAR_SCALE of its size, as a camera twice as far away (or a
  webcam's usual framing: CASME II's eye distance is about 200 px, a webcam's at arm's length about 100);
  shrinking averages the camera's noise away, so every frame gets fresh noise back up to the clip's level.

The video is made at the clip's rate and resampled to `fps` by taking the frame nearest each output
time; the truth is the output frames whose source frame lies within onset..offset.

    video = compose(frames, ClipTruth(onset=0, apex=21, offset=60), Protocol("still", hold_s=1.0, seed=3), fps=30)
    video.frames, video.truth, video.fps
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.spotting.metrics import Interval
from engines.errors import MestreamError

PROTOCOLS = ("still", "drift", "far")
FAR_SCALE = 0.5
CANVAS = (640, 480)  # w, h: the camera frame CASME II was recorded at


@dataclass(frozen=True)
class ClipTruth:
    """0-based positions of a clip's onset, apex and offset among its frames."""

    onset: int
    apex: int
    offset: int


@dataclass(frozen=True)
class Protocol:
    name: str = "still"
    hold_s: float = 1.0
    seed: int = 0
    drift_px: float = 1.0  # "drift": largest translation of the slow head drift
    drift_deg: float = 0.3  # "drift": largest roll

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise MestreamError(f"protocol {self.name!r} is unknown; expected one of {', '.join(PROTOCOLS)}")
        if self.hold_s <= 0:
            raise MestreamError(f"hold_s={self.hold_s}; expected a positive number of seconds, e.g. 1.0")


@dataclass
class ComposedVideo:
    frames: list[np.ndarray]  # BGR, CANVAS sized
    truth: Interval  # in output frames
    fps: float
    noise: float  # grey levels of the noise added to held frames


def frame_noise(frames: list[np.ndarray]) -> float:
    """The camera's per-frame noise (grey levels): robust std of consecutive frames' difference / sqrt 2.

    The median absolute difference ignores the few pixels an expression moves."""
    if len(frames) < 2:
        return 0.0
    levels = []
    for a, b in zip(frames[:-1], frames[1:]):
        d = a.astype(np.int16) - b.astype(np.int16)
        levels.append(1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0))
    return float(np.median(levels))


def frame_in_canvas(image: np.ndarray) -> np.ndarray:
    """The face crop centred in a CANVAS picture, its border replicated outwards. A frame larger than the
    canvas (SAMM's 2040x1088 camera) is first shrunk to fit it, as a 640x480 camera would see that scene."""
    h, w = image.shape[:2]
    cw, ch = CANVAS
    if w > cw or h > ch:
        scale = min(cw / w, ch / h)
        image = cv2.resize(image, (min(cw, round(w * scale)), min(ch, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    left, top = (cw - w) // 2, (ch - h) // 2
    return cv2.copyMakeBorder(image, top, ch - h - top, left, cw - w - left, cv2.BORDER_REPLICATE)


def _drift(n: int, rate: float, protocol: Protocol, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) smooth (dx, dy, roll_deg) per frame: a random walk low-passed over about a second, scaled."""
    if protocol.name != "drift":
        return np.zeros((n, 3))
    steps = rng.standard_normal((n, 3))
    walk = np.cumsum(steps, axis=0)
    width = max(3, int(rate)) | 1
    kernel = np.hanning(width)
    kernel /= kernel.sum()
    smooth = np.stack([np.convolve(np.pad(walk[:, i], width, mode="edge"), kernel, mode="same")[width:-width]
                       for i in range(3)], axis=1)
    smooth -= smooth[0]
    scale = np.abs(smooth).max(axis=0)
    scale[scale == 0] = 1.0
    return smooth / scale * np.array([protocol.drift_px, protocol.drift_px, protocol.drift_deg])


def compose(frames: list[np.ndarray], truth: ClipTruth, protocol: Protocol, fps: float,
            clip_fps: float = 200.0) -> ComposedVideo:
    """A test video of one clip (frames BGR, onset..offset) held still around it, at `fps`."""
    if not frames:
        raise MestreamError("a clip with no frames cannot make a test video; expected its onset..offset frames")
    if not 0 <= truth.onset <= truth.apex <= truth.offset < len(frames):
        raise MestreamError(f"clip truth {truth} does not fit its {len(frames)} frames; expected 0 <= onset <= apex "
                            f"<= offset < frames")
    if fps <= 0 or fps > clip_fps:
        raise MestreamError(f"fps={fps}; expected a rate in (0, {clip_fps:g}], the clip's own rate or less")
    rng = np.random.default_rng(protocol.seed)
    noise = frame_noise([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
    restore = 0.0  # noise that clip frames get back after shrinking ("far")
    if protocol.name == "far":
        h, w = frames[0].shape[:2]
        size = (max(1, round(w * FAR_SCALE)), max(1, round(h * FAR_SCALE)))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        restore = noise * float(np.sqrt(1.0 - FAR_SCALE**2))
    hold = int(round(protocol.hold_s * clip_fps))
    source = [0] * hold + list(range(len(frames))) + [len(frames) - 1] * hold
    held = [True] * hold + [False] * len(frames) + [True] * hold
    drift = _drift(len(source), clip_fps, protocol, rng)
    times = np.arange(int(np.floor((len(source) - 1) * fps / clip_fps)) + 1) / fps
    picks = np.minimum(np.round(times * clip_fps).astype(int), len(source) - 1)
    out = []
    centre = (CANVAS[0] / 2.0, CANVAS[1] / 2.0)
    for i in picks:
        image = frame_in_canvas(frames[source[i]])
        level = noise if held[i] else restore
        if level > 0:
            grain = (rng.standard_normal(image.shape[:2], dtype=np.float32) * level).round().astype(np.int16)
            image = cv2.add(image.astype(np.int16), cv2.merge([grain] * 3), dtype=cv2.CV_16S)
            image = np.clip(image, 0, 255).astype(np.uint8)
        dx, dy, roll = drift[i]
        if protocol.name == "drift":
            m = cv2.getRotationMatrix2D(centre, roll, 1.0)
            m[:, 2] += (dx, dy)
            image = cv2.warpAffine(image, m, CANVAS, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(image)
    first = hold + truth.onset
    last = hold + truth.offset
    inside = np.flatnonzero((picks >= first) & (picks <= last))
    if inside.size == 0:  # a clip shorter than one output frame: the nearest one
        inside = np.array([int(np.argmin(np.abs(picks - (first + last) / 2)))])
    apex = int(np.argmin(np.abs(picks - (hold + truth.apex))))
    return ComposedVideo(out, Interval(int(inside[0]), int(inside[-1]), "micro", apex), fps, noise)
