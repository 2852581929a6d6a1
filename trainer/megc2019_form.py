"""The MEGC2019 composite's flow image, reproduced from raw onset and apex frames (`mestream prep --form megc2019`).

The composite's `STSNet_whole_norm_u_v_os/*.png` (STSTNet / HTNet) follow a public recipe, which this
module repeats step by step so that users with raw datasets can train on the standard form:

1. a face box: either the whole frame (the CASME II / SAMM "Cropped" releases are face crops already), or
   the box the HTNet preprocessing draws from the two eye centres: with d = 5/12 of the eye distance,
   left = left eye x - 0.9 d, right = right eye x + 0.9 d, top = left eye y - 1.4 d, bottom = the face's
   bottom (MTCNN's box there, the chin here; MediaPipe FaceMesh finds the eyes). The box is anisotropic;
2. onset and apex crops made grey, then resized to 28x28 (bilinear) *before* the flow (flow_size 28); measured
   against the composite, running the flow on 224x224 squares (area-resized) and shrinking the result to 28
   comes much closer, so that is the default (flow_size 224);
3. the IPOL TV-L1 flow onset -> apex (trainer/ipol_tvl1.py, the implementation STSTNet's authors name; tau 0.25,
   lambda 0.15, theta 0.3, 5 scales at factor 0.5, 5 warps, epsilon 0.01). OpenCV's DualTVL1 with the same
   settings correlates less with the composite (benchmarks/results/prep_megc2019_form.md);
4. optical strain sqrt(u_x^2 + v_y^2 + (u_y + v_x)^2 / 2) by central differences (one-sided at the border, as
   MATLAB's and numpy's gradient), on the flow at the side it was computed at; with flow_size 224, u, v and
   strain are then shrunk to 28 with a triangle (antialiased bilinear) filter, as MATLAB's imresize 'bilinear';
5. each channel min-max scaled to 0..255 and truncated to uint8;
6. stored with cv2.imwrite as the array (strain, v, u), so the PNG's RGB is (u, v, strain): exactly what
   trainer/data/megc2019.py reads (BGR flipped to RGB = u, v, strain).

Unlike the live form (trainer/prep.py + edge/perception/flow.py flow_input), nothing here is aligned by the
live tracker, so a model trained on this form learns the composite's inputs, not the live pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.perception import flow
from engines.errors import MestreamError
from engines.files import atomic_path
from trainer.ipol_tvl1 import Tvl1, tvl1_flow

SIZE = 28
BOXES = ("whole", "eyes")  # face box modes (see the module docstring, step 1)
# side the flow runs at: 28 is the recipe as published; 224 (the composite's apex crop side) matches its images better
FLOW_SIZE = 224
MEGC2019_TVL1 = Tvl1()  # the IPOL defaults, which are the recipe's settings
# FaceMesh points: the eye corners (image left eye = subject's right), the chin
_LEFT_EYE, _RIGHT_EYE, _CHIN = (33, 133), (362, 263), 152


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0:self.y1, self.x0:self.x1]


def whole_box(image: np.ndarray) -> Box:
    return Box(0, 0, image.shape[1], image.shape[0])


def eye_box(points: np.ndarray, shape: tuple[int, ...]) -> Box:
    """The HTNet eye-distance box from FaceMesh points (N, 2) in pixels, clipped to the image."""
    left, right = points[list(_LEFT_EYE)].mean(axis=0), points[list(_RIGHT_EYE)].mean(axis=0)
    if left[0] > right[0]:
        left, right = right, left
    d = float(np.linalg.norm(left - right)) * 5 / 12
    h, w = shape[:2]
    box = Box(int(max(0, left[0] - 0.9 * d)), int(max(0, left[1] - 1.4 * d)),
              int(min(w, right[0] + 0.9 * d)), int(min(h, points[_CHIN][1])))
    if box.x1 - box.x0 < 8 or box.y1 - box.y0 < 8:
        raise MestreamError(f"eye box {box} is degenerate; the landmarks do not look like a face")
    return box


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sqrt(u_x^2 + v_y^2 + (u_y + v_x)^2 / 2) by central differences, one-sided at the border (np.gradient):
    the live form's strain (edge/perception/flow.py) of the flow given as its two channels."""
    return flow.optical_strain(np.dstack([u, v]))


def _triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) rows of a triangle filter as wide as the shrink factor (antialiased bilinear), each summing to 1."""
    scale = n_in / n_out
    centres = (np.arange(n_out) + 0.5) * scale
    w = np.clip(1.0 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / max(scale, 1.0), 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def shrink(c: np.ndarray, side: int = SIZE) -> np.ndarray:
    """A float channel resized to side x side as MATLAB's imresize 'bilinear' (and PIL's BILINEAR) do."""
    return _triangle_weights(c.shape[0], side) @ c @ _triangle_weights(c.shape[1], side).T


def scale_channel(c: np.ndarray) -> np.ndarray:
    """Min-max to 0..255, truncated to uint8 as the recipe's astype does (a flat channel gives zeros)."""
    lo, hi = float(c.min()), float(c.max())
    if hi <= lo:
        return np.zeros(c.shape, np.uint8)
    return (255.0 * (c - lo) / (hi - lo)).astype(np.uint8)


def _square_grey(image: np.ndarray, box: Box, side: int) -> np.ndarray:
    crop = box.crop(image)
    if crop.size == 0:
        raise MestreamError(f"face box {box} is empty in a {image.shape[1]}x{image.shape[0]} frame")
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    # the recipe's bilinear resize at 28; area averaging when the flow runs larger (no aliasing to undo)
    return cv2.resize(grey, (side, side), interpolation=cv2.INTER_LINEAR if side == SIZE else cv2.INTER_AREA)


def megc2019_image(onset: np.ndarray, apex: np.ndarray, onset_box: Box | None = None,
                   apex_box: Box | None = None, flow_size: int = FLOW_SIZE) -> np.ndarray:
    """(28, 28, 3) uint8 in cv2's order (strain, v, u) from BGR (or grey) onset and apex frames: cv2.imwrite it.

    flow_size 28 is the recipe as published (crops resized to 28 before the flow); a larger side runs the
    flow and the strain on flow_size squares and shrinks u, v and strain to 28, which matches the
    composite's images better (benchmarks/results/prep_megc2019_form.md)."""
    if flow_size < SIZE:
        raise MestreamError(f"flow_size {flow_size} is under the {SIZE}x{SIZE} form; expected >= {SIZE}")
    a = _square_grey(onset, onset_box or whole_box(onset), flow_size)
    b = _square_grey(apex, apex_box or whole_box(apex), flow_size)
    u, v = tvl1_flow(a, b, MEGC2019_TVL1)
    strain = optical_strain(u, v)
    if flow_size != SIZE:
        u, v, strain = (shrink(c) for c in (u, v, strain))
    return np.dstack([scale_channel(strain), scale_channel(v), scale_channel(u)])


def as_flow(image: np.ndarray) -> np.ndarray:
    """The (3, 28, 28) float32 u, v, strain in [0, 1] a trainer reads from that image (megc2019.py's order)."""
    return (image[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)


class EyeBoxes:
    """eye_box for single frames: FaceMesh in static mode, since the recipe finds the face in each image on its own."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                                     min_detection_confidence=0.5)

    def close(self) -> None:
        self._mesh.close()

    def box(self, image: np.ndarray) -> Box:
        from edge.perception.landmarks import normalised_xy

        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        found = self._mesh.process(rgb).multi_face_landmarks
        if not found:
            raise MestreamError("no face found for the eye box")
        points = normalised_xy(found[0]) * np.array([image.shape[1], image.shape[0]], np.float32)
        return eye_box(points, image.shape)


# ---- many clips: OUT/<subject>/<name>.png, as `mestream prep --form megc2019` writes them ------------------


@dataclass(frozen=True)
class Megc2019Params:
    box: str = "whole"
    flow_size: int = FLOW_SIZE

    def __post_init__(self) -> None:
        if self.box not in BOXES:
            raise MestreamError(f"face box {self.box!r} is unknown; expected one of: {', '.join(BOXES)}")
        if not SIZE <= self.flow_size <= 1024:
            raise MestreamError(f"flow size {self.flow_size} is out of range; expected {SIZE}..1024, e.g. {FLOW_SIZE}")

    def as_json(self) -> dict:  # the cache key trainer/prep.py _check_params compares
        # caches made by earlier recipes (OpenCV's DualTVL1, forward differences, area shrink) are refused, not mixed in
        return {"form": "megc2019", "box": self.box, "flow_size": self.flow_size, "tvl1": MEGC2019_TVL1.as_json(),
                "strain_at": "flow_size", "strain": "central", "shrink": "triangle"}


def image_path(out_dir, spec):
    return out_dir / spec.subject / f"{spec.name}.png"


def prep_megc2019(clips: list, out_dir, params: Megc2019Params, progress: bool = True):
    """Write each clip's composite-form PNG (resumable: clips already there are kept); a trainer.prep.PrepReport."""
    from tqdm import tqdm

    from trainer.prep import PrepReport, _check_params, _record, frame_index

    _check_params(out_dir, params)
    report = PrepReport()
    finder = EyeBoxes() if params.box == "eyes" else None
    try:
        for spec in tqdm(clips, desc="prep megc2019", unit="clip", disable=not progress):
            path = image_path(out_dir, spec)
            if path.exists():
                report.cached.append(spec.name)
                continue
            try:
                image = _clip_image(spec, finder, params.flow_size, frame_index)
            except MestreamError as exc:  # ClipError included: named, counted, and the run goes on
                _record(report, spec.name, f"clip {spec.name}: {exc}")
                continue
            with atomic_path(path) as tmp:  # written whole, then renamed: no half file on a stop
                if not cv2.imwrite(str(tmp), image):
                    raise MestreamError(f"cannot write {path}; check the output folder")
            _record(report, spec.name, None)
    finally:
        if finder is not None:
            finder.close()
    return report


def _clip_image(spec, finder, flow_size: int, frame_index) -> np.ndarray:
    index = frame_index(spec.frames_dir)
    frames = []
    for number in (spec.onset, spec.apex):
        if number not in index:
            raise MestreamError(f"frame {number} is not in {spec.frames_dir}; check the sheet's frame numbers")
        image = cv2.imread(str(index[number]), cv2.IMREAD_COLOR)
        if image is None:
            raise MestreamError(f"frame {index[number]} cannot be decoded")
        frames.append(image)
    boxes = [finder.box(f) if finder else whole_box(f) for f in frames]
    return megc2019_image(frames[0], frames[1], boxes[0], boxes[1], flow_size)
