"""Writing files so that a reader never sees half of one: a temporary name in the same folder, then a rename.

    atomic_write(Path("model.onnx"), data)
    with atomic_path(Path("cache.npz")) as tmp:   # for writers that want a path (np.savez, cv2, savefig)
        np.savez(tmp, x=x)

engines/ (TensorRT plans, sidecars, caches), trainer/ (ONNX artifacts, calibration inputs, cards, caches) and
edge/ (keys, reports, charts, videos) write through these two, so a crash or Ctrl-C mid-write leaves the
previous file, or none, behind.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`, ending in the same suffix; renamed onto `path` if the block succeeds.

    The temporary file exists (empty, 0600) when the block starts; writers that pick a format by suffix
    (np.savez, cv2.imwrite, cv2.VideoWriter, savefig) see the real one. `mode` is the final permission
    (default: 0666 less the umask, like any new file); on an error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, data: bytes | str, *, mode: int | None = None, sync: bool = False) -> None:
    """Write `data` (str as UTF-8) to `path` whole or not at all; `sync` flushes it to disk before the rename."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as handle:
        handle.write(payload)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def utc_stamp() -> str:
    """Now in UTC to the second, as `2026-01-31T12:00:00Z` (the `created` / `built` fields of artifacts and plans)."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
