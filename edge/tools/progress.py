"""Progress bars for long jobs (tqdm on stderr), shown unless the user asked for quiet (-q / --no-progress).

- `show_progress(args)`: the one rule every job uses.
- `ProgressSource`: wraps a Source stage (capture) so a chain run in one process (spot-eval) counts frames.
- `TimedProgress`: a bar that fills with wall time, for jobs bounded by a duration (bench); its
  description names the current phase.
"""

from __future__ import annotations

import argparse
import threading
import time


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and not getattr(args, "no_progress", False)


def video_frame_count(source: str) -> int | None:
    """Frames a video file says it has (containers can be wrong: a guide for the bar, never a limit)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    return n if n > 0 else None


class ProgressSource:
    """A Source that passes every frame of `source` through, ticking a tqdm bar (closed with the source)."""

    def __init__(self, source, desc: str, total: int | None = None, enabled: bool = True) -> None:
        self.source = source
        self.name = source.name
        self.desc = desc
        self.total = total
        self.enabled = enabled
        self.bar = None

    def open(self) -> None:
        from tqdm import tqdm

        self.source.open()
        self.bar = tqdm(total=self.total, desc=self.desc, unit="frame", disable=not self.enabled, leave=False)

    def read(self):
        msg = self.source.read()
        if msg is not None and self.bar is not None:
            self.bar.update(1)
        return msg

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.source.close()

    def __getattr__(self, name):  # fps and the like come from the wrapped source
        return getattr(self.source, name)


class TimedProgress:
    """`with TimedProgress(60, enabled=...) as p: p.phase("1/3 stages alone"); ...` fills over 60 s."""

    def __init__(self, total_s: float, enabled: bool = True, every_s: float = 0.5) -> None:
        self.total_s = max(float(total_s), 1.0)
        self.enabled = enabled
        self.every_s = every_s
        self.bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def __enter__(self) -> TimedProgress:
        from tqdm import tqdm

        self._t0 = time.monotonic()
        self.bar = tqdm(total=round(self.total_s), unit="s", disable=not self.enabled, leave=False,
                        bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s")
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            self.bar.n = min(time.monotonic() - self._t0, self.total_s)
            self.bar.refresh()

    def phase(self, name: str) -> None:
        self.bar.set_description_str(name, refresh=True)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.bar.close()
