"""MediaPipe's native INFO/WARNING chatter is kept off stderr; every other line, a crash's last words
included, still gets through, and Python's own stderr stays the terminal."""

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

from edge.native_logs import forward, keep

ROOT = Path(__file__).resolve().parents[2]


def test_mediapipe_info_and_warning_lines_are_chatter_and_errors_are_not():
    assert not keep(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert not keep(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert not keep(b"W0000 00:00:1795496464.106883   31934 inference_feedback_manager.cc:114] Feedback manager "
                    b"requires a model with a single signature inference. Disabling support for feedback tensors.")
    assert not keep(b"I1124 05:03:09.000012 32610 graph.cc:12] started")
    assert keep(b"E0000 00:00:1795496464.106883   31934 calculator_graph.cc:887] INTERNAL: model not found")
    assert keep(b"F0000 00:00:1795496464.106883   31934 packet.cc:9] Check failed: x")
    assert keep(b"05:03:19 WARNING edge.process: track: could not add niceness 5")
    assert keep(b"Traceback (most recent call last):")


def test_forward_passes_lines_in_order_and_a_last_unfinished_one():
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    os.write(w, b"first\nW0000 00:00:1.5 7 a.cc:1] noise\nsec")
    os.write(w, b"ond\nno newline at the end")
    os.close(w)
    forward(r, out_w)
    os.close(out_w)
    assert os.read(out_r, 1000) == b"first\nsecond\nno newline at the end"


def _child(body: str, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    code = textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, timeout=60)


def test_a_native_crash_still_gets_its_last_lines_out():
    result = _child("""
        import os
        from edge.native_logs import filtered_native_stderr
        with filtered_native_stderr():
            os.write(2, b"W0000 00:00:1.5 7 a.cc:1] chatter\\n")
            os.write(2, b"F0000 00:00:1.5 7 a.cc:2] Check failed: the last words\\n")
            os.abort()
    """)
    assert result.returncode != 0
    assert b"Check failed: the last words" in result.stderr and b"chatter" not in result.stderr


def test_python_output_and_stage_processes_output_still_reach_stderr_and_nothing_after_is_filtered():
    result = _child("""
        import logging, os, subprocess, sys
        from edge.native_logs import filtered_native_stderr
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        with filtered_native_stderr():
            logging.getLogger("x").info("a python log line")
            print("a python print", file=sys.stderr)
            subprocess.run([sys.executable, "-c", "import os; os.write(2, b'W0000 00:00:1.5 7 a.cc:1] child chatter\\\\nchild line\\\\n')"])
        os.write(2, b"W0000 00:00:1.5 7 a.cc:1] after: unfiltered\\n")
    """)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "INFO a python log line" in err and "a python print" in err and "child line" in err
    assert "child chatter" not in err and "after: unfiltered" in err


def test_pythons_stderr_is_still_a_terminal_so_progress_bars_and_the_status_line_redraw():
    main, sub = pty.openpty()
    try:
        result = _child("""
            import sys
            from edge.native_logs import filtered_native_stderr
            with filtered_native_stderr():
                print(sys.stderr.isatty(), end="")
        """, stderr=sub)
    finally:
        os.close(sub)
        os.close(main)
    assert result.stdout == b"True"


def test_mestream_synth_prints_no_mediapipe_chatter_and_minus_vv_shows_it(assets, tmp_path):
    face = assets / "videos" / "evm_face.mp4"
    args = ["synth", "--face", str(face), "--out", str(tmp_path / "s.avi"), "--truth", str(tmp_path / "s.csv"), "--seconds", "3"]
    quiet = subprocess.run([sys.executable, "-m", "edge.cli", "-q", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "wrote" in quiet.stdout, quiet.stderr
    assert "XNNPACK" not in quiet.stderr and "inference_feedback_manager" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-m", "edge.cli", "-vv", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr


def test_mestream_train_filters_the_chatter_its_prep_workers_print():
    # train --dataset casme2 starts the face tracker in its prep worker processes, which inherit fd 2
    result = _child("""
        import subprocess, sys
        import trainer.commands.train as train
        def fake_run(args):
            subprocess.run([sys.executable, "-c", "import os; os.write(2, b'W0000 00:00:1.5 7 inference_feedback_manager.cc:114] chatter\\\\nworker line\\\\n')"])
            return 0
        train.run = fake_run
        from edge.cli import main
        sys.exit(main(["train", "--model", "ststnorm", "--dataset", "casme2", "--data", ".", "--labels", "x", "--out", "o"]))
    """)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "worker line" in err and "inference_feedback_manager" not in err


def test_train_skip_warning_counts_clips_for_raw_datasets():
    from trainer.commands.train import skip_warning

    raw = skip_warning("casme2", ["sub01_EP01: missing frames", "sub02_EP03: no face"])
    assert raw.startswith("2 clips skipped") and "file(s)" not in raw and "sub01_EP01" in raw
    assert "file(s)" in skip_warning("megc2019", ["a.png"])
