"""`mestream run`'s status on a terminal: readable with 1 to 12 sources, worst first, never wider than the window."""

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
from stand_ins import artifact_for_tests, free_port, tiny_video

from edge.status_view import TerminalStatus, block_lines
from edge.supervisor import status_line


def _metrics(names):
    m = {f"{p}-{n}": {"state": "running", "fps": 30.0, "busy_ms": {"p95": 5.0}, "drops": {}, "lost": 0}
         for n in names for p in ("capture", "track", "spot")}
    m["infer"] = {"state": "running", "fps": 2.0, "busy_ms": {"p95": 41.0}, "result_ms": {"p50": 90.0, "p95": 130.0}}
    return m


def _sources(n, trouble=None):
    out = {f"cam{k}": {"uri": f"cam:{k}", "state": "running", "frame": 1000 + k, "fps": 30.0, "drops": 0, "lost": 0,
                       "restarts": 0, "result_ms": {"p50": 90.0, "p95": 120.0}} for k in range(n)}
    for name, fields in (trouble or {}).items():
        out[name].update(fields)
    return out


def test_one_source_wraps_its_status_line_at_the_parts_instead_of_cutting_it():
    metrics = {"capture": {"state": "running", "fps": 30.0}, "track": {"state": "running", "fps": 30.0, "busy_ms": {"p95": 12.3}},
               "spot": {"state": "running", "fps": 30.0, "busy_ms": {"p95": 3.1}},
               "infer": {"state": "running", "fps": 1.0, "busy_ms": {"p95": 40.0}, "result_ms": {"p50": 90.0, "p95": 120.0}}}
    lines = block_lines(metrics, None, 60, 24)
    assert len(lines) > 1 and all(len(x) <= 60 for x in lines)
    assert " | ".join(lines) == status_line(metrics)  # nothing lost, only broken between parts


def test_eight_sources_get_a_summary_and_one_row_each_with_the_worst_first():
    sources = _sources(8, {"cam5": {"state": "restarting", "restarts": 1}, "cam2": {"drops": 12}, "cam7": {"lost": 3}})
    lines = block_lines(_metrics(sources), sources, 100, 30)
    assert lines[0].startswith("8 sources: 7 running, 1 restarting | 240 fps in | drops 15 | infer 2 fps 41.0 ms")
    assert lines[1] == "offset->result p50 90 ms p95 130 ms"  # the summary goes on in a second line, not cut
    assert "source" in lines[2] and "drops" in lines[2]
    rows = [x.split()[1] if x.startswith("!") else x.split()[0] for x in lines[3:]]
    assert rows == ["cam5", "cam2", "cam7", "cam0", "cam1", "cam3", "cam4", "cam6"]
    assert [x.startswith("!") for x in lines[3:]] == [True, True, True, False, False, False, False, False]
    assert all(len(x) <= 100 for x in lines)


def test_rows_that_do_not_fit_the_window_s_height_fold_into_one_more_line():
    sources = _sources(12, {"cam11": {"drops": 4}})
    lines = block_lines(_metrics(sources), sources, 100, 10)
    assert len(lines) == 9  # the cursor's line stays free
    assert [x.split()[-7] for x in lines[3:6]] == ["cam11", "cam0", "cam1"]  # then in natural order: cam2 before cam10
    assert re.match(r"  \+ \d+ more \(all fine; 30 fps\): cam", lines[-1])
    shown = {x.split()[-7] for x in lines[3:-1]}
    folded = set(lines[-1].split(": ", 1)[1].split(", "))
    assert shown | folded == set(sources) and not shown & folded


def test_a_narrow_or_low_window_gets_one_line_naming_the_sources_in_trouble():
    sources = _sources(10, {"cam3": {"state": "restarting", "restarts": 2}, "cam8": {"drops": 7}})
    for width, height in ((40, 30), (120, 3)):
        lines = block_lines(_metrics(sources), sources, width, height)
        assert len(lines) == 1 and len(lines[0]) <= width
    wide = block_lines(_metrics(sources), sources, 400, 3)[0]
    assert wide.startswith("10 sources: 9 running, 1 restarting | worst: cam3 [restarting] drops 0, cam8 drops 7 | 300 fps in")
    calm = block_lines(_metrics(_sources(10)), _sources(10), 400, 3)[0]
    assert calm.startswith("10 sources: 10 running | every source fine | 300 fps in")


def test_no_line_is_wider_than_the_window_for_1_to_12_sources():
    for n in range(1, 13):
        sources = _sources(n, {"cam0": {"drops": 123456}})
        for width in (20, 48, 80, 132):
            for height in (1, 5, 24):
                lines = block_lines(_metrics(sources), sources if n > 1 else None, width, height)
                assert lines and all(len(x) <= max(20, width) for x in lines), (n, width, height, lines)
                assert len(lines) <= max(1, height - 1)


def test_the_block_holds_the_window_s_bottom_rows_while_the_rest_scrolls_above_it():
    out = io.StringIO()
    view = TerminalStatus(out)
    view.show(["a", "b"], 10)
    first = out.getvalue()
    # room below the cursor, rows 1-8 scroll, then the block on rows 9-10 with the cursor put back
    assert first == "\n\n\x1b[2A" + "\x1b7\x1b[1;8r\x1b8" + "\x1b7\x1b[9;1H\x1b[2Ka\x1b[10;1H\x1b[2Kb\x1b8"
    view.show(["c", "d"], 10)
    assert out.getvalue()[len(first):] == "\x1b7\x1b[9;1H\x1b[2Kc\x1b[10;1H\x1b[2Kd\x1b8"  # same rows: only redrawn
    mark = len(out.getvalue())
    view.show(["e", "f", "g"], 10)  # a taller block: the old rows given back and cleared, three taken
    assert out.getvalue()[mark:] == ("\x1b7\x1b[r\x1b[9;1H\x1b[2K\x1b[10;1H\x1b[2K\x1b8" + "\n\n\n\x1b[3A\x1b7\x1b[1;7r\x1b8"
                                     + "\x1b7\x1b[8;1H\x1b[2Ke\x1b[9;1H\x1b[2Kf\x1b[10;1H\x1b[2Kg\x1b8")
    mark = len(out.getvalue())
    view.close()
    assert out.getvalue()[mark:] == "\x1b[r\x1b[10;1H\n"  # the whole window scrolls again, the cursor below the block
    view.close()
    assert out.getvalue()[mark:] == "\x1b[r\x1b[10;1H\n"  # once


def test_log_lines_scroll_above_the_block_and_stay_on_screen():
    pyte = pytest.importorskip("pyte", reason="pyte is not installed: pip install 'mestream[dev]'")
    screen = pyte.Screen(40, 8)
    terminal = pyte.Stream(screen)

    class Tty(io.StringIO):
        def write(self, text: str) -> int:
            terminal.feed(text.replace("\n", "\r\n"))  # what the terminal's line discipline does
            return len(text)

    view = TerminalStatus(Tty())
    terminal.feed("earlier output\r\n")
    for k in range(6):
        view.show([f"summary {k}", f"front {k}", f"side {k}"], 8)
        terminal.feed(f"log line {k}\r\n")  # a stage process writes to the same terminal
    assert [x.rstrip() for x in screen.display] == ["log line 2", "log line 3", "log line 4", "log line 5", "",
                                                    "summary 5", "front 5", "side 5"]
    view.show(["summary 6", "front 6"], 8)  # a shorter block: the freed row joins the scrolling part
    terminal.feed("log line 6\r\n")
    assert [x.rstrip() for x in screen.display][-4:] == ["log line 6", "", "summary 6", "front 6"]
    view.close()
    terminal.feed("mestream run: finished\r\n")
    assert [x.rstrip() for x in screen.display][-4:] == ["summary 6", "front 6", "mestream run: finished", ""]


def test_mestream_run_on_a_terminal_redraws_a_block_with_a_row_per_source(tmp_path):
    root = Path(__file__).resolve().parents[2]
    videos = [tiny_video(tmp_path / f"{name}.avi", 75) for name in ("front", "side", "door")]  # 2.5 s paced: a few ticks
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))  # a 90 x 30 window
    cmd = [sys.executable, "-m", "edge.cli", "run", "--artifact", str(artifact_for_tests(tmp_path)),
           "--publish", f"tcp://127.0.0.1:{free_port()}", *(f"--source={v.stem}={v}" for v in videos)]
    proc = subprocess.Popen(cmd, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sub,
                            env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")})
    os.close(sub)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert proc.wait(timeout=180) == 0, b"".join(chunks).decode(errors="replace")[-2000:]
    finally:
        proc.kill()
        reader.join(5)
        os.close(main)
    out = b"".join(chunks).decode(errors="replace")
    drawn = re.findall(r"\x1b\[(\d+);1H\x1b\[2K([^\x1b]*)", out)
    start = max(i for i, (_, text) in enumerate(drawn) if text.startswith("3 sources: "))
    last = drawn[start:]  # the last block: the summary (one line or two), the header, a row per source
    assert int(last[-1][0]) == 30 and [int(r) for r, _ in last] == list(range(31 - len(last), 31)), last
    assert f"\x1b[1;{30 - len(last)}r" in out  # the rows above it scroll
    assert all(len(text) <= 90 for _, text in last), last
    assert "source" in last[-4][1] and sorted(text.split()[0] for _, text in last[-3:]) == ["door", "front", "side"], last
    assert out.rstrip().endswith("mestream run: finished; published on " + cmd[cmd.index("--publish") + 1]), out[-300:]
    assert "\x1b[r\x1b[30;1H\r\n" in out  # the whole window scrolls again at the end (the terminal turns \\n into CR LF)
