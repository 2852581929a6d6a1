"""Unlabelled face frame pairs for dvscl's self-supervised pre-training, filtered by estimated AU intensity.

From each real face video in `$MESTREAM_ASSETS/videos/` (never the CASME II clips: their people are, or may
be, labelled test subjects of the composite), frame t and frame t+GAP are cropped at the same face box
(OpenCV Haar detector, re-detected every DETECT_EVERY frames), and the grey crops give:
- a flow view: Farneback optical flow (u, v) at CROP x CROP, global (head) motion removed by subtracting the
  median flow, optical strain sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2), each channel area-resized to 28x28 and
  min-max scaled per image to 0..255, rounded, /255 -- the same form as the composite's flow PNGs
  (edge.perception.flow.FLOW_FORM), only with Farneback instead of TV-L1 so that the whole set is made in
  seconds on a 2-core CPU;
- a texture view: the later (apex-like) grey crop, area-resized to 56x56, in [0, 1].
AU intensity is estimated as the larger of the mean flow magnitudes (pixels at CROP resolution, global motion
removed) over the brow band and the mouth band of the crop. A pair is kept when it lies in
[AU_MIN, AU_MAX): below, the face is still (nothing to learn); above, it is a shot cut, a lost box or a head
turn, not a facial action. The thresholds were fixed from the physics of the crop (a micro-expression moves
facial skin by a fraction of a pixel to a few pixels at 112 px), not from any labelled sample.
The result is cached in `work_dir` (one .npz, written to a temporary file then renamed).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.errors import MestreamError
from engines.files import atomic_path

log = logging.getLogger(__name__)

# Videos with no person of the labelled composite. Left out on purpose: casme2_sub01_EP02_01f.avi (CASME II
# subject 01, a labelled LOSO subject) and casme2_style_demo.avi (a CASME II subject of unknown identity).
# pyfeat_no_face.mp4 has no face at all.
UNLABELLED_VIDEOS = (
    "pyfeat_single_face.mp4",
    "pyfeat_WolfgangLanger_Pexels.mp4",
    "evm_face.mp4",
    "opencv_Megamind.avi",
    "face_recognition_short_hamilton_clip.mp4",
    "pyfeat_face_noface.mov",
    "pyfeat_noface_face.mov",
)
EXCLUDED_VIDEOS = ("casme2_sub01_EP02_01f.avi", "casme2_style_demo.avi")

GAP = 3  # frames between the two frames of a pair: about 0.1 s at 24-30 fps, inside a micro-expression
STRIDE = 2  # a pair starts every STRIDE frames
DETECT_EVERY = 6  # face box re-detected every N frames; faces move little in 0.2 s
CROP = 112  # side of the grey face crop the flow is computed on
AU_MIN = 0.15  # px at CROP: below this the face is still
AU_MAX = 3.0  # px at CROP: above this it is a cut, a lost box or a head turn
CACHE_VERSION = 1


@dataclass(frozen=True)
class UnlabelledPairs:
    flow: np.ndarray  # float32 (N, 3, 28, 28): u, v, strain in the composite's normalised form
    texture: np.ndarray  # float32 (N, 1, 56, 56): grey later-frame crop in [0, 1]
    au_intensity: np.ndarray  # float32 (N,): estimated AU intensity (px at CROP) of every kept pair
    video: list[str]  # source video of each pair
    candidates: int  # pairs with a face box, before the AU-intensity filter

    def __len__(self) -> int:
        return len(self.au_intensity)


def _quantise_minmax(channel: np.ndarray) -> np.ndarray:
    lo, hi = channel.min(), channel.max()
    if not hi > lo:
        return np.zeros_like(channel, np.float32)
    return (np.rint((channel - lo) * 255.0 / (hi - lo)) / 255.0).astype(np.float32)


def flow_view(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, float]:
    """Two grey uint8 CROP x CROP crops -> ((3, 28, 28) flow view, AU intensity in px)."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 3, 9, 3, 5, 1.1, 0)  # (H, W, 2)
    flow = flow - np.median(flow.reshape(-1, 2), axis=0)  # remove global head motion
    u, v = flow[..., 0], flow[..., 1]
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    strain = np.sqrt(ux * ux + vy * vy + 0.5 * (uy + vx) ** 2)
    magnitude = np.hypot(u, v)
    h, w = magnitude.shape
    brows = magnitude[int(0.15 * h): int(0.40 * h), int(0.10 * w): int(0.90 * w)].mean()
    mouth = magnitude[int(0.65 * h): int(0.92 * h), int(0.20 * w): int(0.80 * w)].mean()
    channels = [cv2.resize(c.astype(np.float32), (28, 28), interpolation=cv2.INTER_AREA) for c in (u, v, strain)]
    return np.stack([_quantise_minmax(c) for c in channels]), float(max(brows, mouth))


def _largest_face(cascade, grey: np.ndarray) -> tuple[int, int, int, int] | None:
    import cv2

    scale = 240.0 / grey.shape[1]  # detect on a small copy: the Haar cascade is the slow part
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x / scale), int(y / scale), int(w / scale), int(h / scale)


def _video_pairs(path: Path, cascade) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MestreamError(f"cannot open video {path}; expected a readable face video (see assets MANIFEST.md)")
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    flows, textures, intensities = [], [], []
    box = None
    for t in range(0, len(frames) - GAP, STRIDE):
        if t % DETECT_EVERY == 0 or box is None:
            box = _largest_face(cascade, frames[t])
        if box is None:
            continue
        x, y, w, h = box
        crops = []
        for frame in (frames[t], frames[t + GAP]):
            face = frame[max(0, y): y + h, max(0, x): x + w]
            crops.append(cv2.resize(face, (CROP, CROP), interpolation=cv2.INTER_AREA))
        flow, intensity = flow_view(crops[0], crops[1])
        flows.append(flow)
        textures.append(cv2.resize(crops[1], (56, 56), interpolation=cv2.INTER_AREA)[None].astype(np.float32) / 255)
        intensities.append(intensity)
    return flows, textures, intensities


def build_unlabelled_pairs(videos_dir: Path) -> UnlabelledPairs:
    """Every kept frame pair of the allowed videos (about 20-40 s on 2 cores)."""
    import cv2

    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    flows, textures, intensities, video = [], [], [], []
    candidates = 0
    for name in UNLABELLED_VIDEOS:
        path = videos_dir / name
        if not path.is_file():
            log.warning("unlabelled video %s is missing: pre-training goes on without it", path)
            continue
        f, x, a = _video_pairs(path, cascade)
        candidates += len(a)
        keep = [i for i, value in enumerate(a) if AU_MIN <= value < AU_MAX]
        log.info("%s: %d face pairs, %d pass the AU-intensity threshold", name, len(a), len(keep))
        flows += [f[i] for i in keep]
        textures += [x[i] for i in keep]
        intensities += [a[i] for i in keep]
        video += [name] * len(keep)
    if not intensities:
        raise MestreamError(f"no face pair in {videos_dir} passed the AU-intensity threshold [{AU_MIN}, {AU_MAX}) px; "
                            "expected the face videos of the assets folder (videos/)")
    return UnlabelledPairs(
        flow=np.stack(flows).astype(np.float32),
        texture=np.stack(textures).astype(np.float32),
        au_intensity=np.asarray(intensities, np.float32),
        video=video,
        candidates=candidates,
    )


def load_unlabelled_pairs(assets: Path | str | None, work_dir: Path | str) -> UnlabelledPairs:
    """The unlabelled pairs, from the cache in `work_dir` when present, else built from `assets/videos`."""
    work_dir = Path(work_dir)
    cache = work_dir / f"dvscl_unlabelled_pairs_v{CACHE_VERSION}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return UnlabelledPairs(data["flow"], data["texture"], data["au_intensity"], list(data["video"]),
                                   int(data["candidates"]))
    if assets is None:
        raise MestreamError("dvscl pre-training needs the unlabelled face videos: set MESTREAM_ASSETS (or pass the "
                            "assets folder) to the folder that holds videos/")
    videos_dir = Path(assets) / "videos"
    if not videos_dir.is_dir():
        raise MestreamError(f"{videos_dir} does not exist; expected the assets folder with the face videos in videos/")
    pairs = build_unlabelled_pairs(videos_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:  # never leave half a cache behind
        np.savez_compressed(tmp, flow=pairs.flow, texture=pairs.texture, au_intensity=pairs.au_intensity,
                            video=np.asarray(pairs.video), candidates=np.asarray(pairs.candidates))
    return pairs
