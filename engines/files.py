"""Writing files so that a reader never sees half of one: a temporary name in the same folder, then a rename.

    atomic_write(Path("model.onnx"), data)

engines/ (TensorRT plans, sidecars, caches) and trainer/ (ONNX artifacts, calibration inputs, cards) write
through this one function, so a crash or Ctrl-C mid-write leaves the previous file, or none, behind.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file should read like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def utc_stamp() -> str:
    """Now in UTC to the second, as `2026-01-31T12:00:00Z` (the `created` / `built` fields of artifacts and plans)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
