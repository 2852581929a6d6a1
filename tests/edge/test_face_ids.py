"""Face ids follow faces by continuity: synthetic landmark tracks, no MediaPipe."""

import numpy as np
import pytest

from edge.perception.face_ids import FaceIds, IdParams
from engines.errors import MestreamError

_GRID = np.stack(np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1.2, 10)), -1).reshape(-1, 2).astype(np.float32)


def face_at(x: float, y: float, size: float = 100.0, seed: int = 0) -> np.ndarray:
    """A face-like landmark set: a grid with its own small irregularity, top-left corner at (x, y)."""
    jitter = np.random.default_rng(seed).normal(0, 0.03, _GRID.shape).astype(np.float32)
    return (_GRID + jitter) * size + np.float32([x, y])


def run(frames: list[list[tuple[str, np.ndarray]]], params: IdParams | None = None) -> list[list[tuple[str, int]]]:
    """Each frame's (true name, points) list -> (true name, assigned id) per face."""
    ids = FaceIds(params)
    return [[(name, face_id) for (name, _), face_id in zip(frame, ids.assign([p for _, p in frame]).ids)] for frame in frames]


def owners(assigned) -> dict[int, set[str]]:
    """id -> the true faces it was given to: more than one is a swap (-1, a face dropped as a second mesh
    on another where the two coincide, is no id)."""
    out: dict[int, set[str]] = {}
    for frame in assigned:
        for name, face_id in frame:
            if face_id >= 0:
                out.setdefault(face_id, set()).add(name)
    return out


def test_two_faces_moving_side_by_side_keep_their_ids():
    frames = [[("a", face_at(50 + 2 * t, 100, seed=1)), ("b", face_at(400 - 3 * t, 120 + t, seed=2))] for t in range(60)]
    assigned = run(frames)
    assert assigned[0] == [("a", 0), ("b", 1)]  # new faces numbered left to right
    assert all(frame == [("a", 0), ("b", 1)] for frame in assigned)


def test_faces_given_in_any_order_keep_their_ids():
    frames = [[("a", face_at(50, 100, seed=1)), ("b", face_at(400, 100, seed=2))][:: 1 if t % 2 else -1] for t in range(20)]
    assert owners(run(frames)) == {0: {"a"}, 1: {"b"}}


def test_two_faces_that_cross_never_swap_ids():
    # a walks right and b left at the same height; while they overlap only the front one (a) is found,
    # as FaceMesh finds only the face in front
    frames = []
    for t in range(80):
        xa, xb = 100 + 5 * t, 500 - 5 * t
        frame = [("a", face_at(xa, 100, seed=1))]
        if abs(xa - xb) > 60:
            frame.append(("b", face_at(xb, 104, seed=2)))
        frames.append(frame)
    assigned = run(frames)
    assert all(len(names) == 1 for names in owners(assigned).values())  # no id ever given to both faces
    assert assigned[0] == [("a", 0), ("b", 1)]


def test_two_faces_that_cross_in_plain_view_never_swap_ids():
    # both found on every frame, boxes overlapping in the middle: ambiguous frames give new ids, not swapped ones
    frames = [[("a", face_at(100 + 5 * t, 100, seed=1)), ("b", face_at(500 - 5 * t, 100, seed=2))] for t in range(80)]
    assert all(len(names) == 1 for names in owners(run(frames)).values())
    # swaying to and fro, crossing three times, slowing down where they cross: their motion predicts nothing
    frames = [[("a", face_at(300 + 150 * np.sin(t / 6), 100, seed=1)), ("b", face_at(300 - 150 * np.sin(t / 6), 100, seed=2))]
              for t in range(80)]
    assert all(len(names) == 1 for names in owners(run(frames)).values())
    assert len(owners(run(frames, IdParams(margin=0.0)))[0]) == 2  # the cheapest pair alone swaps them


def test_a_face_missing_for_a_few_frames_keeps_its_id_and_one_gone_longer_gets_a_new_one():
    params = IdParams(forget_after=5)
    ids = FaceIds(params)
    here = face_at(200, 100)
    assert ids.assign([here]).ids == [0]
    for _ in range(3):
        step = ids.assign([])
        assert step.missing == [0] and step.forgotten == []
    assert ids.assign([here]).ids == [0]
    for _ in range(5):
        assert ids.assign([]).missing == [0]
    assert ids.assign([]).forgotten == [0]
    assert ids.open_ids == []
    assert ids.assign([here]).ids == [1]  # ids are never reused


def test_a_face_that_jumps_across_the_frame_is_a_new_face():
    ids = FaceIds()
    assert ids.assign([face_at(50, 100)]).ids == [0]
    step = ids.assign([face_at(450, 100)])
    assert step.ids == [1] and step.missing == [0]


def test_a_face_moving_steadily_is_followed_through_a_short_absence():
    ids = FaceIds()
    for t in range(10):
        assert ids.assign([face_at(100 + 12 * t, 100)]).ids == [0]
    ids.assign([])
    ids.assign([])
    assert ids.assign([face_at(100 + 12 * 12, 100)]).ids == [0]  # where the motion says it should be


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_shift", 0.0, "max_shift=0.0"),
    ("min_iou", 1.0, "min_iou=1.0 is out of range"),
    ("margin", -0.1, "margin=-0.1 is negative"),
    ("forget_after", -1, "forget_after=-1"),
])
def test_bad_id_parameters_are_refused_in_one_line(field, value, message):
    with pytest.raises(MestreamError, match=message):
        IdParams(**{field: value})


def test_a_second_mesh_laid_over_a_tracked_face_is_the_same_face():
    ids = FaceIds()
    assert ids.assign([face_at(200, 100)]).ids == [0]
    # the detector's larger mesh over the same face, given first: it is dropped and the track goes on
    step = ids.assign([face_at(180, 80, size=150, seed=3), face_at(201, 100)])
    assert step.ids == [-1, 0] and step.missing == []
    assert ids.assign([face_at(202, 100)]).ids == [0]
    # two faces that merely touch are two faces
    assert ids.assign([face_at(202, 100), face_at(290, 100, seed=4)]).ids == [0, 1]
