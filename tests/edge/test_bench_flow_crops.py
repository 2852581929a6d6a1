import numpy as np
import pytest

from edge.tools.bench_flow import centre_squares, face_pairs
from engines.errors import MestreamError

VIDEO = "videos/casme2_sub01_EP02_01f.avi"  # 44 frames


def test_centre_squares_are_grey_squares_of_the_first_frames(assets):
    frames = centre_squares(assets / VIDEO, 5, 64)
    assert len(frames) == 5 and all(f.shape == (64, 64) and f.dtype == np.uint8 for f in frames)
    assert len(centre_squares(assets / VIDEO, 100, 32)) == 44  # a shorter video gives what it has


def test_face_pairs_are_the_centre_squares_gap_frames_apart(assets):
    frames = centre_squares(assets / VIDEO, 50, 64)
    onset, apex = face_pairs(assets / VIDEO, 40, 10, 64)
    assert onset.shape == apex.shape == (34, 64, 64)  # 44 frames leave 34 pairs 10 apart
    assert np.array_equal(onset[3], frames[3]) and np.array_equal(apex[3], frames[13])


def test_face_pairs_refuse_a_video_shorter_than_the_gap(assets):
    with pytest.raises(MestreamError, match="need at least 51"):
        face_pairs(assets / VIDEO, 3, 50)


@pytest.mark.parametrize("flags", [["--batch", "0"], ["--batch", "16,x"], ["--repeat", "0"], ["--gap", "-1"], ["--cpu-pairs", "0"]])
def test_bench_flow_refuses_counts_below_one_before_it_reads_anything(flags, capsys):
    from edge.cli import main

    assert main(["bench-flow", "--assets", "/nonexistent", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flags[0] in err[0] and ">= 1" in err[0]
