"""Keep MediaPipe's native start-up chatter off the terminal, and every other native line on it.

MediaPipe 0.10.21 logs through absl before anything calls absl::InitializeLog(), so its INFO and WARNING
lines ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires a model with a single
signature", "Using NORM_RECT without IMAGE_DIMENSIONS") reach stderr whatever GLOG_minloglevel or
TF_CPP_MIN_LOG_LEVEL say, eight lines each time a face tracker starts. The setter of absl's threshold
is not exported from its bindings, so the lines are filtered instead:

- file descriptor 2 (what C and C++ code write to, and what stage processes inherit) becomes a pipe
  into a small filter process, which passes on every line but that chatter;
- Python's own sys.stderr keeps the terminal, so progress bars and the live status line still see a
  TTY and redraw with \\r;
- the filter is its own process, in its own session: a native crash (an absl CHECK, an abort) still
  gets its last lines out, and Ctrl-C in the terminal does not kill it before the stages have said
  their last words.

    with filtered_native_stderr(enabled=log_level > DEBUG):
        run_the_job()
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator

# absl/glog INFO and WARNING records (errors and fatals are kept), and the two lines TFLite and absl
# print once before them
CHATTER = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)"
)


def keep(line: bytes) -> bool:
    """True for every stderr line but MediaPipe's INFO / WARNING chatter."""
    return CHATTER.match(line) is None


def forward(src_fd: int, dst_fd: int) -> None:
    """Copy src to dst line by line, without the chatter, until src ends (a last unfinished line included)."""
    pending = b""
    while True:
        chunk = os.read(src_fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if keep(line))
        if out:
            _write_all(dst_fd, out)
    if pending and keep(pending):
        _write_all(dst_fd, pending)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def filtered_native_stderr(enabled: bool = True) -> Iterator[None]:
    """While inside: fd 2 goes through the filter, sys.stderr stays where fd 2 went before."""
    if not enabled or os.name != "posix":
        yield
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read_end, write_end = os.pipe()
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (a closed or replaced stderr): nothing to filter
        yield
        return
    try:
        filter_proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from edge.native_logs import forward; forward(0, 1)"],
            stdin=read_end, stdout=original, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
            env={**os.environ, "PYTHONPATH": _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    except OSError:
        for fd in (read_end, write_end, original):
            os.close(fd)
        yield
        return
    os.close(read_end)
    saved_stderr = sys.stderr
    sys.stderr = _reopen(original, saved_stderr)
    _point_handlers(saved_stderr, sys.stderr)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(original, 2)  # our end of the pipe closes here; the filter ends when the stages have let go too
        ours, sys.stderr = sys.stderr, saved_stderr
        _point_handlers(ours, saved_stderr)
        with contextlib.suppress(OSError):
            ours.close()
        os.close(original)
        with contextlib.suppress(subprocess.TimeoutExpired):
            filter_proc.wait(timeout=2.0)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reopen(fd: int, like):
    """A text stream on a duplicate of fd, line-buffered like a terminal's stderr."""
    return open(os.dup(fd), "w", buffering=1, encoding=getattr(like, "encoding", None) or "utf-8",
                errors=getattr(like, "errors", None) or "backslashreplace")


def _point_handlers(old, new) -> None:
    """Logging handlers made before the switch (basicConfig's) write to the stream they were given."""
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is old:
            handler.setStream(new)
