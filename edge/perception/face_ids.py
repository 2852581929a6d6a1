"""Stable face ids across frames: each face found on a frame is matched to the faces seen before by
continuity of its box and landmarks.

A track is one face's last landmarks (source pixels) and its velocity. On each frame where landmarks were
found, every open track is predicted forward (constant velocity) and compared with every found face:
the cost is the mean landmark distance over the track's face size (the square root of its box area),
and a pair is allowed only when that cost is at most `max_shift` and the boxes overlap by at least
`min_iou`. Pairs are taken greedily, cheapest first. A pair is refused when it is ambiguous: another
track (or face) is within `margin` of the same cost, as when two faces cross or one hides the other; the
tracks involved are then closed and the faces start new ones.
A found face left without a track gets a new id; ids are never reused within a run, so a face that
leaves and comes back, or a crossing that cannot be told apart, makes a new id rather than a swapped one.
A track not matched for more than `forget_after` frames is closed. Two meshes on one face (FaceMesh's
detector, re-run while fewer than max_faces are tracked, can lay a second, larger mesh over a tracked
face) are one face: a found face whose box lies mostly inside another's (`duplicate` of the smaller box's
area) is dropped, keeping the one that continues a track best; it gets id -1.

    ids = FaceIds(IdParams())
    step = ids.assign([points_a, points_b])   # step.ids[i] is the id of the i-th face; step.missing, step.forgotten
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engines.errors import MestreamError


@dataclass(frozen=True)
class IdParams:
    # Landmark distance over face size that still continues a track. A face moves well under 0.1 of its
    # size between frames at 30 fps; a quick turn or a few frames of absence reach 0.3.
    max_shift: float = 0.35
    min_iou: float = 0.2  # the predicted and found boxes must overlap at least this much
    # Two candidates whose costs differ by less than this (face sizes) are ambiguous: neither is taken.
    margin: float = 0.1
    forget_after: int = 15  # frames a track stays open, unmatched, for its face to come back (0.5 s at 30 fps)
    duplicate: float = 0.6  # share of the smaller box inside the other that makes two found faces one

    def __post_init__(self) -> None:
        if not self.max_shift > 0:
            raise MestreamError(f"max_shift={self.max_shift}; expected a face-size fraction > 0, e.g. 0.35")
        if not 0.0 <= self.min_iou < 1.0:
            raise MestreamError(f"min_iou={self.min_iou} is out of range; expected a value in [0, 1)")
        if self.margin < 0:
            raise MestreamError(f"margin={self.margin} is negative; expected >= 0 face sizes")
        if not 0.0 < self.duplicate <= 1.0:
            raise MestreamError(f"duplicate={self.duplicate} is out of range; expected a share in (0, 1]")
        if self.forget_after < 0:
            raise MestreamError(f"forget_after={self.forget_after}; expected an integer >= 0 frames")


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a landmark set."""
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def inside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Share of the smaller of two boxes that lies inside the other."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller if smaller > 0 else 0.0


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    face_id: int
    points: np.ndarray  # landmarks where the face was last seen
    velocity: np.ndarray  # per frame, smoothed
    missed: int = 0  # frames since it was last matched

    def predicted(self) -> np.ndarray:
        return self.points + self.velocity * (self.missed + 1)

    def size(self) -> float:
        x0, y0, x1, y1 = box_of(self.points)
        return max(1.0, float(np.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0))))


@dataclass
class Assignment:
    ids: list[int]  # one per found face, in the order given; -1: a second mesh on a face kept under another
    missing: list[int] = field(default_factory=list)  # open tracks not matched on this frame
    forgotten: list[int] = field(default_factory=list)  # tracks closed on this frame (unmatched too long)


class FaceIds:
    """Gives each found face an id that continues the one it had on earlier frames (see the module doc)."""

    def __init__(self, params: IdParams | None = None) -> None:
        self.params = params or IdParams()
        self._tracks: dict[int, _Track] = {}
        self._next = 0

    @property
    def open_ids(self) -> list[int]:
        return sorted(self._tracks)

    def reset(self) -> None:
        """Close every track (a gap in the stream: nothing before it continues); ids go on counting."""
        self._tracks.clear()

    def costs(self, faces: list[np.ndarray]) -> np.ndarray:
        """(tracks, faces) matching cost, inf where the gate refuses the pair; tracks in open_ids order."""
        p = self.params
        tracks = [self._tracks[i] for i in self.open_ids]
        out = np.full((len(tracks), len(faces)), np.inf)
        for r, track in enumerate(tracks):
            guess = track.predicted()
            size = track.size()
            guess_box = box_of(guess)
            for c, face in enumerate(faces):
                if face.shape != guess.shape or iou(guess_box, box_of(face)) < p.min_iou:
                    continue
                cost = float(np.linalg.norm(face - guess, axis=1).mean()) / size
                if cost <= p.max_shift:
                    out[r, c] = cost
        return out

    def _duplicates(self, faces: list[np.ndarray], cost: np.ndarray) -> set[int]:
        """Faces to drop: each the worse of a pair whose boxes are one face (the cheaper continuation wins,
        else the one given first)."""
        best = cost.min(axis=0) if cost.shape[0] else np.full(len(faces), np.inf)
        boxes = [box_of(f) for f in faces]
        dropped: set[int] = set()
        for a in range(len(faces)):
            for b in range(a + 1, len(faces)):
                if a in dropped or b in dropped or inside(boxes[a], boxes[b]) < self.params.duplicate:
                    continue
                dropped.add(b if best[a] <= best[b] else a)
        return dropped

    def assign(self, faces: list[np.ndarray]) -> Assignment:
        p = self.params
        order = self.open_ids
        cost = self.costs(faces)
        dropped = self._duplicates(faces, cost)
        cost[:, sorted(dropped)] = np.inf
        taken: dict[int, int] = {}  # face index -> track row
        closed: set[int] = set()  # rows ended now: their face can no longer be told from another
        if cost.size:
            pairs = sorted(zip(*np.nonzero(np.isfinite(cost))), key=lambda rc: cost[rc])
            used_rows: set[int] = set()
            fresh: set[int] = set()  # faces that start new tracks whatever comes later
            for r, c in pairs:
                if r in used_rows or c in taken or c in fresh:
                    continue
                # every other candidate for this face or this track counts, taken or not: a crossing makes
                # two tracks near two faces, and the cheaper pair alone is no proof that the other is right
                rival_rows = [r2 for r2 in range(cost.shape[0]) if r2 != r and cost[r2, c] - cost[r, c] < p.margin]
                rival_faces = [c2 for c2 in range(cost.shape[1]) if c2 != c and cost[r, c2] - cost[r, c] < p.margin]
                if rival_rows or rival_faces:
                    # the tracks involved end here and the faces start new ones: a new id, never a swapped one
                    ended = {r, *rival_rows} - used_rows
                    closed |= ended
                    used_rows |= ended
                    fresh |= {c, *rival_faces} - set(taken)
                    continue
                taken[c] = r
                used_rows.add(r)
        ids: list[int] = [-1] * len(faces)
        new_faces = [c for c in range(len(faces)) if c not in taken and c not in dropped]
        matched_rows = set()
        for c, r in taken.items():
            track = self._tracks[order[r]]
            step = (faces[c] - track.points) / (track.missed + 1)
            track.velocity = 0.5 * track.velocity + 0.5 * step
            track.points = faces[c].astype(np.float32, copy=True)
            track.missed = 0
            ids[c] = track.face_id
            matched_rows.add(r)
        # new faces numbered left to right, so a first frame's ids read in the picture's order
        for c in sorted(new_faces, key=lambda c: box_of(faces[c])[0]):
            ids[c] = self._next
            self._tracks[self._next] = _Track(self._next, faces[c].astype(np.float32, copy=True), np.zeros_like(faces[c], dtype=np.float32))
            self._next += 1
        result = Assignment(ids)
        for r, face_id in enumerate(order):
            if r in matched_rows:
                continue
            track = self._tracks[face_id]
            track.missed += 1
            if track.missed > p.forget_after or r in closed:
                del self._tracks[face_id]
                result.forgotten.append(face_id)
            else:
                result.missing.append(face_id)
        return result
