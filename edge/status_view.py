"""`mestream run`'s live status on a terminal: a block of lines that fits the window, redrawn in place.

The one-line `detail` of me.status (supervisor.status_line) keeps every process and source in one line,
for logs and subscribers. A person watching eight cameras needs something else: which source is in
trouble, without reading 400 characters. So on a terminal:

- one source: the status line, wrapped at its " | " parts to the window's width;
- several sources: a summary (how many run, frames in per second, drops, the shared processes,
  offset -> result latency; two lines at most), then one row per source in columns, the worst first (not running, then most
  drops and lost frames, then most restarts; ties by name so rows do not jump); rows that do not fit the
  window's height fold into one "+ N more" line that says how those are doing;
- a window too low for rows: the summary and the worst sources squeezed into one line.

The block stays at the bottom of the window while log lines scroll above it (TerminalStatus). Piped into a
file (no terminal), `mestream run` writes the full status line instead, one per tick.

    view = TerminalStatus(sys.stderr)
    width, height = view.size()
    view.show(block_lines(metrics, sources, width, height), height); ...; view.close()
"""

from __future__ import annotations

import os
import re
from typing import Any, TextIO

from edge.supervisor import process_part, result_tail

OK_STATES = frozenset({"running", "ready", "finishing", "done", None})
CALM_STATES = OK_STATES | {"waiting", "starting"}  # not in trouble (yet): every source starts so
_MIN_TABLE_WIDTH = 48  # below this the columns do not fit: the compact one-line form instead


def block_lines(metrics: dict[str, dict[str, Any]], sources: dict[str, dict[str, Any]] | None,
                width: int, height: int) -> list[str]:
    """The lines to show in a window of width x height (at least one line, none longer than width)."""
    width = max(20, width)
    if not sources or len(sources) < 2:
        from edge.supervisor import status_line

        return _wrap(status_line(metrics), width)[: max(1, height - 1)]
    head = summary(metrics, sources)
    rows = sorted(sources.items(), key=_worst_first)
    room = height - 1  # the cursor's line stays free, so the block never scrolls the window
    if room < 5 or width < _MIN_TABLE_WIDTH:
        return [_cut(compact(head, rows), width)]
    lines = _wrap(" | ".join(head), width)[:2] + [_cut(_row_header(rows), width)]  # the summary on two lines at most
    room -= len(lines)
    shown = rows if len(rows) <= room else rows[: room - 1]
    lines += [_cut(_row(name, s, rows), width) for name, s in shown]
    if len(shown) < len(rows):
        lines.append(_cut(_more(rows[len(shown):]), width))
    return lines


def summary(metrics: dict[str, dict[str, Any]], sources: dict[str, dict[str, Any]]) -> list[str]:
    """['8 sources: 7 running, 1 restarting', '239 fps in', 'drops 12', 'infer 2 fps 41.0 ms', 'offset->result ...']"""
    states: dict[str, int] = {}
    for s in sources.values():
        state = s.get("state") or "starting"
        states[state] = states.get(state, 0) + 1
    counted = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: (kv[0] != "running", -kv[1], kv[0])))
    fps = sum(float(s.get("fps") or 0) for s in sources.values())
    drops = sum(_drops(s) for s in sources.values())
    chained = tuple(f"-{name}" for name in sources)
    shared = [process_part(name, m) for name, m in metrics.items() if not name.endswith(chained)]
    tail = result_tail(metrics)
    return [f"{len(sources)} sources: {counted}", f"{fps:.0f} fps in", f"drops {drops}", *shared] + ([tail[3:]] if tail else [])


def compact(head: list[str], rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The summary with the sources in trouble, worst first, right after the count (the end may be cut)."""
    trouble = [f"{name}{_state_mark(s)} drops {_drops(s)}" for name, s in rows if _in_trouble(s)]
    worst = "worst: " + ", ".join(trouble) if trouble else "every source fine"
    return " | ".join([head[0], worst, *head[1:]])


def _row_header(rows: list[tuple[str, dict[str, Any]]]) -> str:
    w = _name_width(rows)
    return f"  {'source':<{w}} {'state':<11} {'fps':>4} {'frame':>7} {'drops':>6} {'restarts':>8} {'p95 ms':>7}"


def _row(name: str, s: dict[str, Any], rows: list[tuple[str, dict[str, Any]]]) -> str:
    w = _name_width(rows)
    p95 = (s.get("result_ms") or {}).get("p95")
    mark = "!" if _in_trouble(s) else " "
    return (f"{mark} {name:<{w}} {s.get('state') or 'starting':<11} {float(s.get('fps') or 0):>4.0f} {int(s.get('frame', -1)):>7} "
            f"{_drops(s):>6} {int(s.get('restarts') or 0):>8} {'-' if p95 is None else f'{p95:.0f}':>7}")


def _more(rest: list[tuple[str, dict[str, Any]]]) -> str:
    fps = [float(s.get("fps") or 0) for _, s in rest]
    trouble = sum(_in_trouble(s) for _, s in rest)
    how = f"{trouble} with drops or restarts" if trouble else "all fine"
    rate = f"{min(fps):.0f}" if round(min(fps)) == round(max(fps)) else f"{min(fps):.0f}-{max(fps):.0f}"
    return f"  + {len(rest)} more ({how}; {rate} fps): {', '.join(name for name, _ in rest)}"


def _worst_first(item: tuple[str, dict[str, Any]]) -> tuple:
    name, s = item
    return (s.get("state") in CALM_STATES, -_drops(s), -int(s.get("restarts") or 0), _natural(name))


def _natural(name: str) -> list:
    """cam2 before cam10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def _in_trouble(s: dict[str, Any]) -> bool:
    return s.get("state") not in CALM_STATES or _drops(s) > 0 or bool(s.get("restarts"))


def _drops(s: dict[str, Any]) -> int:
    return int(s.get("drops") or 0) + int(s.get("lost") or 0)


def _state_mark(s: dict[str, Any]) -> str:
    return "" if s.get("state") in OK_STATES else f" [{s.get('state')}]"


def _name_width(rows: list[tuple[str, dict[str, Any]]]) -> int:
    return min(24, max(6, *(len(name) for name, _ in rows)))


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _wrap(line: str, width: int) -> list[str]:
    """Break a ' | '-separated line between its parts so each piece fits width (a part longer is cut)."""
    lines: list[str] = []
    for part in line.split(" | "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " | " + part
        else:
            lines.append(_cut(part, width))
    return lines


class TerminalStatus:
    """Keeps a block of lines at the bottom of the terminal while everything else scrolls above it.

    The block's rows are taken out of the terminal's scrolling region (DECSTBM), so the log lines the stage
    processes write to the same terminal scroll in the region above and never overwrite the block, nor the
    block them; each redraw saves the cursor, rewrites the bottom rows and puts the cursor back. A block of
    another height, or a window of another size, gives the rows back and takes them again. close() gives
    them back and leaves the last block on screen with the cursor below it.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.rows = 0  # bottom rows held for the block (0: none)
        self.height = 0  # the window's lines when they were taken

    def size(self) -> tuple[int, int]:
        """(columns, lines) of the window the stream writes to: COLUMNS/LINES when set, else the stream's own
        terminal (stdout may be piped while stderr is not), else 100 x 24."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            size = os.terminal_size((0, 0))
        return _env_int("COLUMNS") or size.columns or 100, _env_int("LINES") or size.lines or 24

    def show(self, lines: list[str], height: int) -> None:
        n = min(len(lines), height - 1)  # one row at least stays for the scrolling region
        out = []
        if (n, height) != (self.rows, self.height):
            out.append(self._give_back())
            # room for the block below the cursor (scrolling what is there up), then the region above it
            out.append("\n" * n + f"\x1b[{n}A" + f"\x1b7\x1b[1;{height - n}r\x1b8")
            self.rows, self.height = n, height
        out.append("\x1b7")
        out += [f"\x1b[{height - n + 1 + i};1H\x1b[2K{line}" for i, line in enumerate(lines[:n])]
        out.append("\x1b8")
        self.stream.write("".join(out))
        self.stream.flush()

    def _give_back(self) -> str:
        """The whole window scrolls again, and the old block's rows are cleared (the cursor stays put)."""
        if not self.rows:
            return ""
        first = self.height - self.rows + 1
        return "\x1b7\x1b[r" + "".join(f"\x1b[{first + i};1H\x1b[2K" for i in range(self.rows)) + "\x1b8"

    def close(self) -> None:
        """Give the rows back, leave the last block on screen, and the cursor on a fresh line below it."""
        if self.rows:
            self.stream.write(f"\x1b[r\x1b[{self.height};1H\n")
            self.stream.flush()
            self.rows = self.height = 0


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else 0
