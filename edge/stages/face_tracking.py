"""The track stage: "frame" -> "face" (aligned crop, landmarks, box, transform) and face lost/found status.

Up to `max_faces` faces are tracked; each keeps a `face_id` across frames (edge/perception/face_ids.py:
continuity of box and landmarks; ids are never reused, so a face that leaves and comes back gets a new one)
and its own aligner. Every frame gives one "face" message per open face, in id order, at most max_faces:
found=True with its crop, then, where room is left, found=False for a face that is missing but whose id is
still open (IdParams.forget_after frames). A frame with no open face gives one found=False message without
face_id, so sequence numbers keep flowing to the spotter. With max_faces = 1 that is one message per frame,
as before, now with "face_id". A "status"
message (event "face_found" / "face_lost", with the face's face_id and box) goes out before the face
messages of the frame where its state changes; once for the very first frame when it has no face.

Skipped work: FaceMesh is by far the slowest step, and while the head is still its only job is to
confirm that it is still (the steady aligner holds the transform anyway). With `detect_every` N > 1 it
runs at least every Nth frame, and also on every frame where
  - the aligner is following a head move (not holding),
  - a 32x32 thumbnail of the crop (warped with the held transform) changed by more than `motion_gate`
    grey levels since the last run,
  - the frame comes after a gap (dropped frames), or there was no face.
FaceMesh runs for all faces at once, so any face's reason runs it; a new face is picked up within N frames.
The crop warp itself runs on every frame with the current transform. Header fields beyond the documented
ones: "fresh" (FaceMesh ran on this frame) and "held" (the transform is the held one: head still).
With a colour source the stage also sends "crop_color" (S, S, 3) BGR for the spotter's apex_color.

TrackParams is flat (numbers and booleans only) so that a [stages.track] table of the topology file
maps onto it directly.

    stage = FaceTracking(TrackParams(detect_every=4))
    benchmarks/tracking_policies.py VIDEO         # fps, FaceMesh calls, jitter and alignment error per policy
                                                  # (edge/tools/track_bench.py times the stage alone)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edge.messages import Message
from edge.perception.align import AlignParams, SteadyAligner, apply_transform, warp_crop
from edge.perception.face_ids import FaceIds, IdParams
from edge.perception.landmarks import FaceLandmarks, LandmarkParams
from edge.topology import stage_options_of
from engines.errors import MestreamError

if TYPE_CHECKING:
    from edge.process import RunOptions

_THUMB = 32  # side of the aligned-crop thumbnail the motion gate compares, pixels (S=128: 4x4 blocks)


@dataclass(frozen=True)
class TrackParams:
    size: int = 128  # S: side of the aligned crop
    # steady hold (edge/perception/align.py AlignParams says why these values)
    move_px: float = 1.0
    move_deg: float = 1.5
    settle_px: float = 0.5
    settle_frames: int = 3
    blink_ratio: float = 0.8
    # FaceMesh
    max_side: int = 0  # shrink frames whose longer side exceeds this before FaceMesh (0 = never)
    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    small_faces: bool = True  # zoom in on faces too small for FaceMesh's own detector (LandmarkParams)
    small_face_confidence: float = 0.7
    # skipped work
    # Run FaceMesh at least every Nth frame while the head is held (1 = every frame). 4 gives the same
    # lost/found frames and the same held crops as 1 on the asset videos, at about half the CPU on a
    # still face (benchmarks/tracking_policies.py); a moving head runs it every frame anyway.
    detect_every: int = 4
    # Mean change (grey levels) of a 32x32 thumbnail of the crop, warped with the held transform, since
    # the last FaceMesh run, that forces a run before the Nth frame (0 = off).
    motion_gate: float = 3.0
    # output
    color_crop: bool = True  # also send "crop_color" when the source is colour
    # Frames without a face before "face_lost" is announced (found=False is sent on every one of them).
    lost_after: int = 1
    # Faces tracked at once (FaceMesh's max_num_faces); each costs its own warp, alignment and spotter.
    max_faces: int = 1
    # Frames a missing face keeps its id open, for coming back at the same place (edge/perception/face_ids.py).
    forget_after: int = 15

    def __post_init__(self) -> None:
        if not isinstance(self.max_faces, int) or isinstance(self.max_faces, bool) or self.max_faces < 1:
            raise MestreamError(f"max_faces={self.max_faces!r}; expected an integer >= 1, the faces tracked per source: "
                                f"set [stages.track] max_faces = 1 (one face) or more, e.g. max_faces = 2")
        self.align  # noqa: B018 - builds AlignParams and LandmarkParams, which check their own fields
        self.landmarks  # noqa: B018
        self.ids  # noqa: B018
        if self.detect_every < 1:
            raise MestreamError(f"detect_every={self.detect_every}; expected an integer >= 1 (1 = every frame)")
        if self.motion_gate < 0:
            raise MestreamError(f"motion_gate={self.motion_gate} is negative; expected >= 0 grey levels (0 = off)")
        if self.lost_after < 1:
            raise MestreamError(f"lost_after={self.lost_after}; expected an integer >= 1")

    @property
    def align(self) -> AlignParams:
        return AlignParams(self.size, self.move_px, self.move_deg, self.settle_px, self.settle_frames, self.blink_ratio)

    @property
    def landmarks(self) -> LandmarkParams:
        return LandmarkParams(
            self.max_side,
            self.refine_landmarks,
            self.min_detection_confidence,
            self.min_tracking_confidence,
            self.small_faces,
            self.small_face_confidence,
            self.max_faces,
        )

    @property
    def ids(self) -> IdParams:
        return IdParams(forget_after=self.forget_after)


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    """The aligned grey crop shrunk to _THUMB x _THUMB by area averaging (sensor noise averages out)."""
    return cv2.resize(crop, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def _box(points: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def build(options: dict[str, Any], run: RunOptions, resume_seq: int = 0) -> FaceTracking:
    """The track stage from its [stages.track] table. Colour crops go out only when something downstream
    reads them (run.color_crops, decided by preflight), unless the table says color_crop itself."""
    params = stage_options_of("track", options, TrackParams)
    if "color_crop" not in options and not run.color_crops:
        params = dataclasses.replace(params, color_crop=False)
    return FaceTracking(params)


@dataclass
class _Face:
    """One tracked face's own state: its aligner, last landmarks and the motion gate's reference."""

    face_id: int
    aligner: SteadyAligner
    points: np.ndarray | None = None  # source landmarks of the last FaceMesh run that found it; None: missing
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    ref_thumb: np.ndarray | None = None
    transform: np.ndarray | None = None  # the transform of its last crop
    held: bool = True
    present: bool = False  # announced as found (face_found sent, face_lost not since)
    misses: int = 0  # FaceMesh runs in a row that did not find it


class FaceTracking:
    """Stage "track": MediaPipe landmarks, steady alignment to an S x S crop per face, face lost/found events."""

    name = "track"

    def __init__(self, params: TrackParams | None = None) -> None:
        self.params = params or TrackParams()
        self._finder: FaceLandmarks | None = None
        self._ids = FaceIds(self.params.ids)
        self._faces: dict[int, _Face] = {}  # open faces by id: found, or missing but not yet forgotten
        self._started = False  # the first frame has been seen (its state is always announced)
        self._since_run = 0
        self.landmark_runs = 0  # FaceMesh calls so far, for benchmarks and the status line

    def open(self) -> None:
        self._finder = FaceLandmarks(self.params.landmarks)

    def close(self) -> None:
        if self._finder is not None:
            self._finder.close()
            self._finder = None

    def _status(self, event: str, header: dict, detail: str, face: _Face | None = None) -> Message:
        fields = {
            "stage": self.name,
            "event": event,
            "detail": detail,
            "seq": header.get("seq"),
            "t_capture_ns": header.get("t_capture_ns"),
        }
        if face is not None:
            fields["face_id"] = face.face_id
            fields["box"] = list(face.box)
        return Message("status", fields)

    def _warp(self, image: np.ndarray, transform: np.ndarray) -> dict[str, np.ndarray]:
        S = self.params.size
        if image.ndim == 2:
            return {"crop": warp_crop(image, transform, S)}
        # warp the colour frame and convert the small crop: cheaper than converting the whole frame
        color = warp_crop(image, transform, S)
        arrays = {"crop": cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)}
        if self.params.color_crop:
            arrays["crop_color"] = color
        return arrays

    def _must_run(self, gap: int) -> bool:
        """FaceMesh must run on this frame whatever the motion gate says (see the module doc)."""
        faces = self._faces.values()
        return (not faces or gap > 0 or self._since_run + 1 >= self.params.detect_every
                or any(f.points is None or f.aligner.following for f in faces))

    def _run_finder(self, image: np.ndarray) -> list[int]:
        """FaceMesh on the whole frame, its faces matched to the open ones; returns the ids found."""
        found = self._finder.find_all(image)
        self.landmark_runs += 1
        self._since_run = 0
        ids = self._ids.assign(found).ids
        for face_id, points in zip(ids, found):
            if face_id < 0:
                continue  # a second mesh on a face already found
            face = self._faces.get(face_id)
            if face is None:
                face = self._faces[face_id] = _Face(face_id, SteadyAligner(self.params.align))
            face.points, face.box, face.misses = points, _box(points), 0
        for face in self._faces.values():
            if face.face_id not in ids:
                face.points, face.ref_thumb = None, None
                face.aligner.reset()
                face.misses += 1
        return [i for i in ids if i >= 0]

    def process(self, msg: Message) -> list[Message]:
        if msg.topic != "frame":
            return [msg]
        if self._finder is None:
            raise MestreamError("the track stage was fed before open(); call open() first")
        image = msg.arrays.get("image")
        if image is None:
            raise MestreamError(f"frame message seq={msg.header.get('seq')} has no 'image' array; expected one")
        header = {k: msg.header[k] for k in ("seq", "t_capture_ns", "fps", "source", "gap") if k in msg.header}
        p = self.params
        gap = int(msg.header.get("gap", 0) or 0)

        fresh = self._must_run(gap)
        crops: dict[int, dict[str, np.ndarray]] = {}
        if not fresh:
            for face in self._faces.values():
                face.transform, face.held = face.aligner.transform, True
                crops[face.face_id] = self._warp(image, face.transform)
                # the gate looks at the crop warped with the held transform: a head move shifts it,
                # in units of the face (not the frame), whatever the face's size in the frame
                if (p.motion_gate > 0 and face.ref_thumb is not None
                        and float(np.abs(_thumbnail(crops[face.face_id]["crop"]) - face.ref_thumb).mean()) > p.motion_gate):
                    fresh = True
        if fresh:
            seen = self._run_finder(image)
            for face_id in seen:
                face = self._faces[face_id]
                before = crops.get(face_id)
                step = face.aligner.update(face.points)
                if before is None or face.transform is None or not np.array_equal(step.transform, face.transform):
                    crops[face_id] = self._warp(image, step.transform)
                face.transform, face.held = step.transform, step.held
                if p.motion_gate > 0 and p.detect_every > 1:
                    face.ref_thumb = _thumbnail(crops[face_id]["crop"])
        else:
            self._since_run += 1

        out: list[Message] = []
        faces_out: list[Message] = []
        missing: list[Message] = []
        first = not self._started
        self._started = True
        for face_id in sorted(self._faces):
            face = self._faces[face_id]
            if face.points is not None:
                if not face.present:
                    out.append(self._status("face_found", header, f"face {face_id} is tracked", face))
                    face.present = True
                arrays = crops[face_id]
                arrays["landmarks"] = apply_transform(face.transform, face.points).astype(np.float32)
                faces_out.append(Message("face", {
                    **header,
                    "face_id": face_id,
                    "found": True,
                    "box": list(face.box),
                    "transform": [[float(v) for v in row] for row in face.transform],
                    "held": bool(face.held),
                    "fresh": fresh,
                }, arrays))
                continue
            gone = face_id not in self._ids.open_ids
            if face.present and (face.misses >= p.lost_after or gone):
                out.append(self._status("face_lost", header, f"face {face_id} left the frame", face))
                face.present = False
            if gone:
                del self._faces[face_id]  # forgotten: its id is never given again
            else:
                missing.append(Message("face", {**header, "face_id": face_id, "found": False, "fresh": fresh}))
        # at most max_faces messages a frame, found faces first: with one face, one message per frame as ever
        faces_out += missing[: max(0, p.max_faces - len(faces_out))]
        if not faces_out:
            # no face at all: one message all the same, so sequence numbers keep flowing to the spotter
            faces_out.append(Message("face", {**header, "found": False, "fresh": fresh}))
            if first:
                out.append(self._status("face_lost", header, "no face in the frame"))
        return out + faces_out
