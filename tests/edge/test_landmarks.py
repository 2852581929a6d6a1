"""FaceMesh landmarks on real stills and video frames (through the assets fixture)."""

import cv2
import numpy as np
import pytest

from edge.perception.landmarks import FaceLandmarks, LandmarkParams
from edge.tools.track_bench import read_frames
from engines.errors import MestreamError


def test_a_frontal_still_gives_478_landmarks_inside_the_image_with_eyes_in_order(assets):
    image = cv2.imread(str(assets / "images" / "pyfeat_single_face.jpg"))
    with FaceLandmarks() as finder:
        points = finder.find(image)
    assert points is not None and points.shape == (478, 2) and points.dtype == np.float32
    h, w = image.shape[:2]
    assert (points[:, 0] >= 0).all() and (points[:, 0] < w).all()
    assert (points[:, 1] >= 0).all() and (points[:, 1] < h).all()
    # 33 is the image-left outer eye corner, 263 the image-right one; nose tip (1) below the eye line
    assert points[33, 0] < points[133, 0] < points[362, 0] < points[263, 0]
    assert points[1, 1] > max(points[33, 1], points[263, 1])


def test_a_cartoon_frame_without_a_face_gives_none(assets):
    frame = read_frames(assets / "videos" / "pyfeat_no_face.mp4", limit=1)[0]
    with FaceLandmarks() as finder:
        assert finder.find(frame) is None


def test_grey_frames_work_and_agree_with_colour_ones(assets):
    frame = read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=1)[0]
    with FaceLandmarks() as a, FaceLandmarks() as b:
        colour = a.find(frame)
        grey = b.find(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    assert colour is not None and grey is not None
    eye_distance = np.linalg.norm(colour[263] - colour[33])
    assert np.abs(colour - grey).mean() < 0.05 * eye_distance


def test_shrinking_the_input_keeps_landmarks_in_source_pixels(assets):
    frame = read_frames(assets / "videos" / "pyfeat_noface_face.mov", limit=120)[110]  # 960x540, face
    with FaceLandmarks() as full, FaceLandmarks(LandmarkParams(max_side=320)) as small:
        a, b = full.find(frame), small.find(frame)
    assert a is not None and b is not None
    eye_distance = np.linalg.norm(a[263] - a[33])
    assert np.abs(a - b).mean() < 0.05 * eye_distance


def test_a_colour_image_with_four_channels_is_refused_with_the_expected_shape():
    with FaceLandmarks() as finder:
        with pytest.raises(MestreamError, match=r"expected \(H, W, 3\) BGR"):
            finder.find(np.zeros((64, 64, 4), np.uint8))


def test_a_tiny_max_side_is_refused():
    with pytest.raises(MestreamError, match="max_side=10"):
        LandmarkParams(max_side=10)


def test_the_fast_landmark_reader_agrees_with_the_protobuf_fields(assets):
    import mediapipe as mp

    from edge.perception.landmarks import normalised_xy

    frame = read_frames(assets / "videos" / "pyfeat_single_face.mp4", limit=1)[0]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        marks = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).multi_face_landmarks[0]
    slow = np.array([[m.x, m.y] for m in marks.landmark], np.float32)
    np.testing.assert_array_equal(normalised_xy(marks), slow)
    # a list with an unset z is laid out differently on the wire: the reader must notice and still agree
    marks.landmark[5].ClearField("z")
    np.testing.assert_array_equal(normalised_xy(marks), slow)


def test_small_faces_in_a_group_photo_are_found_through_the_zoom_window(assets):
    image = cv2.imread(str(assets / "images" / "pyfeat_multi_face.jpg"))  # five faces about 100 px wide
    with FaceLandmarks(LandmarkParams(small_faces=False)) as plain:
        assert plain.find(image) is None  # FaceMesh's own short-range detector misses them
    with FaceLandmarks() as finder:
        points = finder.find(image)
        assert finder.zoomed
    assert points is not None and points.shape == (478, 2)
    width = points[:, 0].max() - points[:, 0].min()
    assert 60 < width < 160
    assert points[33, 0] < points[263, 0] and points[1, 1] > points[33, 1]


def test_a_zoomed_face_that_grows_returns_to_the_main_mesh(assets):
    image = cv2.imread(str(assets / "images" / "pyfeat_multi_face.jpg"))
    with FaceLandmarks() as finder:
        assert finder.find(image) is not None and finder.zoomed
        big = cv2.resize(image, None, fx=4.0, fy=4.0)[1000:2000, 1800:2800]  # the same face, 4x larger
        assert finder.find(big) is not None
        assert not finder.zoomed


def test_a_package_mediapipe_loads_but_that_is_missing_is_named_instead_of_mediapipe():
    import subprocess
    import sys

    # mediapipe 0.10.21 imports matplotlib.pyplot at `import mediapipe`; None in sys.modules makes it missing
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from edge.perception.landmarks import FaceLandmarks\n"
            "FaceLandmarks()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.endswith("mediapipe cannot start: matplotlib is not installed, and `import mediapipe` loads it "
                         "(a requirement of mediapipe itself): pip install matplotlib"), run.stderr
