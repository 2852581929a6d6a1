"""Similarity alignment, the steady hold and the region boxes of the canonical crop."""

import cv2
import numpy as np
import pytest

from edge.perception.align import (
    ANCHOR_INDICES,
    REGIONS,
    AlignParams,
    SteadyAligner,
    align_transform,
    apply_transform,
    estimate_similarity,
    region_boxes,
    rotation_deg,
    template_points,
)
from edge.perception.landmarks import FaceLandmarks
from engines.errors import MestreamError


@pytest.fixture(scope="module")
def still_landmarks(assets):
    image = cv2.imread(str(assets / "images" / "pyfeat_single_face.jpg"))
    with FaceLandmarks() as finder:
        points = finder.find(image)
    assert points is not None
    return points.astype(np.float64)


def _similarity(scale, deg, tx, ty):
    a = np.radians(deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_estimate_similarity_recovers_a_known_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (6, 2))
    truth = _similarity(0.7, 12.0, 30.0, -5.0)
    m = estimate_similarity(src, apply_transform(truth, src))
    np.testing.assert_allclose(m, truth, atol=1e-9)


def test_estimate_similarity_never_returns_a_mirror_image():
    src = np.random.default_rng(2).uniform(0, 100, (6, 2))
    m = estimate_similarity(src, src * [-1.0, 1.0])
    assert np.linalg.det(m[:, :2]) >= 0


def test_real_landmarks_land_on_the_template_and_the_eye_line_is_level(still_landmarks):
    m = align_transform(still_landmarks, 128)
    mapped = apply_transform(m, still_landmarks[list(ANCHOR_INDICES)])
    assert np.abs(mapped - template_points(128)).max() < 4.0
    eyes = apply_transform(m, still_landmarks[[33, 263]])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3.0  # 6 anchors share the error of a slightly turned head


def test_region_boxes_contain_their_landmarks_on_a_real_face(still_landmarks):
    size = 128
    crop_points = apply_transform(align_transform(still_landmarks, size), still_landmarks)
    members = {
        "brow_left": [70, 105, 107],
        "brow_right": [300, 334, 336],
        "eye_left": [159, 145],
        "eye_right": [386, 374],
        "nose": [4, 5, 1],
        "mouth_left": [61],
        "mouth_right": [291],
        "chin": [199],
    }
    assert set(members) == set(REGIONS)
    boxes = region_boxes(size)
    for name, indices in members.items():
        x, y, w, h = boxes[name]
        assert 0 <= x and 0 <= y and x + w <= size and y + h <= size and w > 4 and h > 4
        for i in indices:
            px, py = crop_points[i]
            assert x <= px <= x + w and y <= py <= y + h, (name, i, (px, py), boxes[name])


def test_the_aligner_holds_still_under_landmark_noise(still_landmarks):
    rng = np.random.default_rng(1)
    aligner = SteadyAligner(AlignParams(size=128))
    first = aligner.update(still_landmarks)
    transforms = []
    for _ in range(30):
        noisy = still_landmarks + rng.normal(0.0, 0.3, still_landmarks.shape)
        transforms.append(aligner.update(noisy))
    settled = transforms[5:]
    assert all(step.held for step in settled)
    assert all(np.array_equal(step.transform, settled[0].transform) for step in settled)
    assert not first.held


def test_without_a_hold_the_same_noise_moves_the_transform(still_landmarks):
    rng = np.random.default_rng(1)
    aligner = SteadyAligner(AlignParams(size=128, move_px=0.0, move_deg=0.0, settle_frames=1))
    aligner.update(still_landmarks)
    steps = [aligner.update(still_landmarks + rng.normal(0.0, 0.3, still_landmarks.shape)) for _ in range(10)]
    assert len({step.transform.tobytes() for step in steps}) == 10


def test_the_aligner_follows_a_head_move_and_then_holds_again(still_landmarks):
    aligner = SteadyAligner(AlignParams(size=128))
    for _ in range(5):
        aligner.update(still_landmarks)
    before = aligner.transform.copy()
    before_similarity = aligner.similarity.copy()
    turn = _similarity(1.0, 8.0, 25.0, 10.0)
    moved = apply_transform(turn, still_landmarks)
    step = aligner.update(moved)
    assert not step.held
    steps = [aligner.update(moved) for _ in range(5)]
    assert steps[-1].held
    # the new transform undoes the move: the anchors land where they did before
    anchors_before = apply_transform(before, still_landmarks[list(ANCHOR_INDICES)])
    anchors_after = apply_transform(steps[-1].transform, moved[list(ANCHOR_INDICES)])
    assert np.abs(anchors_before - anchors_after).max() < 1e-6
    assert rotation_deg(aligner.similarity) == pytest.approx(rotation_deg(before_similarity) - 8.0, abs=1e-6)


def test_an_out_of_range_crop_size_is_refused_with_the_fix():
    with pytest.raises(MestreamError, match="crop size 8 is out of range"):
        AlignParams(size=8)


def test_a_landmark_array_of_the_wrong_shape_is_refused():
    with pytest.raises(MestreamError, match="expected MediaPipe FaceMesh"):
        align_transform(np.zeros((68, 2)), 128)


def _blinked(landmarks, corner_shift_px):
    """The same face with both upper lids down on the lower ones and the eye corners slid a little, as
    FaceMesh reports a closed eye."""
    out = landmarks.copy()
    for upper, lower in ((160, 144), (158, 153), (387, 373), (385, 380)):
        out[upper] = out[lower] - (0.0, 0.5)
    for corner in (33, 133, 362, 263):
        out[corner] += (0.0, corner_shift_px)
    return out


def test_the_aligner_holds_through_a_blink_whose_eye_corners_slide(still_landmarks):
    aligner = SteadyAligner(AlignParams(size=128))
    for _ in range(8):
        aligner.update(still_landmarks)
    before = aligner.transform.copy()
    step = aligner.update(_blinked(still_landmarks, 3.0))
    assert step.held and np.array_equal(step.transform, before)
    # without the blink hold, the same frame moves the crop
    loose = SteadyAligner(AlignParams(size=128, blink_ratio=0.0))
    for _ in range(8):
        loose.update(still_landmarks)
    assert not np.array_equal(loose.update(_blinked(still_landmarks, 3.0)).transform, before)


def test_an_out_of_range_blink_ratio_is_refused_with_the_fix():
    with pytest.raises(MestreamError, match="blink_ratio=1.5 is out of range"):
        AlignParams(blink_ratio=1.5)
