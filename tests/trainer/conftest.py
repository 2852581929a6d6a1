"""Fixtures for the trainer tests: the real face clip's frames that the loader tests build frame trees from."""

import pytest
from frame_trees import FACE_VIDEO, read_frames


@pytest.fixture(scope="module")
def face_frames(assets):
    """The real CASME II clip's frames at 160x120, small enough for trees of hundreds of images."""
    return read_frames(assets / FACE_VIDEO)
