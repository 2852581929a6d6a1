"""`mestream run`'s status on a terminal: readable with 1 to 12 sources, worst first, never wider than the window."""

import io
import re

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


def test_the_terminal_block_is_redrawn_in_place():
    out = io.StringIO()
    view = TerminalStatus(out)
    view.show(["a", "b", "c"])
    view.show(["d", "e"])
    view.show(["f"])
    view.close()
    assert out.getvalue() == "\r\x1b[Ja\nb\nc" + "\x1b[2F\x1b[Jd\ne" + "\x1b[1F\x1b[Jf" + "\n"
