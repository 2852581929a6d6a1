"""edge/tools/progress.py: bars on stderr for long jobs, off with -q / --no-progress, never changing what a job computes."""

import argparse
import time

from edge.tools.progress import ProgressSource, TimedProgress, show_progress, video_frame_count


def test_quiet_or_no_progress_turns_the_bars_off():
    assert show_progress(argparse.Namespace(quiet=False))
    assert not show_progress(argparse.Namespace(quiet=True))
    assert not show_progress(argparse.Namespace(quiet=False, no_progress=True))


def test_a_progress_source_passes_every_frame_of_a_real_video_and_counts_it(assets, capsys):
    from edge.stages.capture import Capture

    video = assets / "videos" / "casme2_sub01_EP02_01f.avi"
    total = video_frame_count(video)
    assert total == 44
    source = ProgressSource(Capture(str(video), fast=True), "frames", total)
    source.open()
    seqs = []
    while (msg := source.read()) is not None:
        seqs.append(msg.header["seq"])
    assert source.fps > 0  # attributes of the wrapped source come through
    assert source.bar.n == 44 and source.bar.total == 44
    source.close()
    assert seqs == list(range(44))
    err = capsys.readouterr().err
    assert "frames:" in err and "/44" in err


def test_a_timed_bar_fills_with_time_and_names_its_phase(capsys):
    with TimedProgress(2, every_s=0.05) as bar:
        bar.phase("bench 1/3 each stage alone")
        time.sleep(0.4)
    err = capsys.readouterr().err
    assert "bench 1/3 each stage alone" in err and "/2 s" in err
    with TimedProgress(2, enabled=False) as bar:
        bar.phase("hidden")
    assert capsys.readouterr().err == ""
