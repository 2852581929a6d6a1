"""Frames from one process to the next on this host through a shared-memory ring, not through the socket.

A 640x480 colour frame is 921,600 bytes; over ZeroMQ ipc it was copied into the kernel and out again,
about 0.6-0.9 CPU ms a frame at each end. Here the writer (capture) decodes into a slot of a ring that
lives in a file under /dev/shm, and the message on the socket carries only its header and a reference:
header["shm"] = {"segment", "slot", "gen", "shape", "dtype"}. The reader (track) maps the same file and
hands the stage a view of the slot.

Layout: a 64-byte control block (magic, slots, slot bytes, written, released, reader pid), then per slot
an 8-byte generation and the pixels (aligned to 64 bytes). Message k of a segment has generation k + 1
and lives in slot k % slots.

Never silent corruption: the writer sets a slot's generation to 0 before it writes the pixels and to
k + 1 after; the reader checks the generation before and after it has used the pixels. A slot written
again meanwhile shows another generation: the frame is dropped and counted, with a gap, like any drop.

Flow control: with policy "block" (--fast files: lose nothing) the writer claims slot k only once the
reader has released message k - slots (`released` in the control block), so nothing unread is ever
overwritten, however many small header-only messages ZeroMQ and the kernel hold. With "drop" (a live
source) the writer never waits: it overwrites, and the reader counts what it finds overwritten.
A reader that dies holds its credits forever; the waiting writer sees its pid gone (the reader writes
its pid on attach) and frees every slot, so the restarted reader gets frames again.

Names: the supervisor gives every run a prefix (mestream-PID-TOKEN-); the writer adds its own pid, so a
restarted capture makes a new segment and the reader follows the name in the message. The supervisor
removes every name with its prefix at stop and when the writer dies; the writer unlinks its own at close.

    ring = FrameRing.create(prefix, slots=12, slot_bytes=640 * 480 * 3)
    view = ring.claim((480, 640, 3), np.uint8, block=True)   # decode into view
    ref = ring.commit(view)                                   # {"segment", "slot", "gen", ...}
    reader = RingReader(prefix); image = reader.resolve(ref); ... ; reader.still_valid(ref)
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHM_DIR = Path("/dev/shm")
MAGIC = 0x4D45_5346_5241_4D31  # "MESFRAM1"
_CONTROL = 64
# control block: magic, slots, slot_bytes, written, released, reader_pid, end of stream read (u64 each, little-endian)
_MAGIC, _SLOTS, _SLOT_BYTES, _WRITTEN, _RELEASED, _READER = range(6)
_ALIGN = 64
_DTYPES = {"uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16)}
# A blocked writer whose reader never attached (it died before its first frame) frees the slots after this.
ORPHAN_WAIT_S = 2.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,120}$")


class RingError(Exception):
    """A reference that does not fit the ring (bad segment name, slot, shape): the message is bad."""


def available() -> bool:
    """Shared frames need a tmpfs at /dev/shm (Linux); elsewhere every frame travels inline."""
    return SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK)


def slot_stride(slot_bytes: int) -> int:
    return _ALIGN * math.ceil((8 + slot_bytes) / _ALIGN)


def remove_segments(prefix: str) -> int:
    """Unlink every segment whose name starts with prefix (the supervisor's cleanup); returns how many."""
    if not prefix or not _NAME.match(prefix):
        return 0
    n = 0
    for path in SHM_DIR.glob(prefix + "*"):
        try:
            path.unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")  # a zombie holds no mapping and will never release
    except (OSError, IndexError):
        return False


class _Mapped:
    def __init__(self, name: str, fd: int, size: int) -> None:
        self.name = name
        self.size = size
        self._map = mmap.mmap(fd, size)
        os.close(fd)
        self.control = np.frombuffer(self._map, dtype="<u8", count=8)
        self.slots = int(self.control[_SLOTS])
        self.slot_bytes = int(self.control[_SLOT_BYTES])
        self.stride = slot_stride(self.slot_bytes)
        self._gens = [np.frombuffer(self._map, dtype="<u8", count=1, offset=_CONTROL + i * self.stride) for i in range(self.slots)]

    def pixels(self, slot: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = math.prod(shape)
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=_CONTROL + slot * self.stride + 8).reshape(shape)

    def gen(self, slot: int) -> int:
        return int(self._gens[slot][0])

    def close(self) -> None:
        self.control = None
        self._gens = []
        try:
            self._map.close()
        except BufferError:
            pass  # a view still refers to it (a frame held by a test or the preview); freed with it


class FrameRing(_Mapped):
    """The writer's side: claim a slot, fill it, commit it; unlink at close."""

    @classmethod
    def create(cls, prefix: str, slots: int, slot_bytes: int) -> FrameRing:
        if slots < 2 or slot_bytes < 1:
            raise ValueError(f"a frame ring needs at least 2 slots of at least 1 byte, got {slots} x {slot_bytes}")
        name = f"{prefix}{os.getpid()}-{time.monotonic_ns() % 10**9}"
        if not _NAME.match(name):
            raise ValueError(f"segment name {name!r} is not plain letters, digits, - and _")
        size = _CONTROL + slots * slot_stride(slot_bytes)
        path = SHM_DIR / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            header = struct.pack("<6Q", MAGIC, slots, slot_bytes, 0, 0, 0)
            os.pwrite(fd, header, 0)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        ring = cls(name, fd, size)
        ring._claimed: int | None = None
        return ring

    @property
    def written(self) -> int:
        return int(self.control[_WRITTEN])

    def claim(self, shape: tuple[int, ...], dtype, *, block: bool, wait: Callable[[], bool] | None = None) -> np.ndarray | None:
        """A view of the next slot, shaped for the frame; None when the frame does not fit (send it inline)
        or `wait` said stop. With block, waits until the reader has released the slot's last message;
        `wait` is called while waiting (heartbeats) and returns False to give up."""
        dtype = np.dtype(dtype)
        if dtype.name not in _DTYPES or math.prod(shape) * dtype.itemsize > self.slot_bytes:
            return None
        k = self.written if self._claimed is None else self._claimed
        if block:
            since = time.monotonic()
            while k - int(self.control[_RELEASED]) >= self.slots:
                reader = int(self.control[_READER])
                orphaned = not reader and time.monotonic() - since > ORPHAN_WAIT_S
                if orphaned or (reader and not _alive(reader)):
                    # the reader died holding credits (or before it ever read one); its messages died with
                    # it: every slot is free. A late message for an old slot is caught by its generation.
                    self.control[_RELEASED] = k
                    self.control[_READER] = 0
                    break
                if wait is not None and not wait():
                    return None
                time.sleep(0.001)  # a frame period at 1000 fps: the ring holds several frames ahead, so no need to poll faster
        slot = k % self.slots
        self._gens[slot][0] = 0  # being written: a reader of the old message sees it changed
        self._claimed = k
        return self.pixels(slot, tuple(shape), dtype)

    def commit(self, image: np.ndarray, *, block: bool = False, wait: Callable[[], bool] | None = None) -> dict | None:
        """Publish the claimed slot (or copy `image` into a newly claimed one): the reference for the header.
        None when the frame cannot go through the ring (send it inline)."""
        view = None
        if self._claimed is not None:
            slot = self._claimed % self.slots
            candidate = self.pixels(slot, image.shape, image.dtype) if image.dtype.name in _DTYPES and image.nbytes <= self.slot_bytes else None
            same = candidate is not None and image.flags.c_contiguous
            if same and candidate.__array_interface__["data"][0] == image.__array_interface__["data"][0]:
                view = candidate  # decoded straight into the slot
        if view is None:
            target = self.claim(image.shape, image.dtype, block=block, wait=wait)
            if target is None:
                return None
            np.copyto(target, image)
        k = self._claimed
        self._claimed = None
        slot = k % self.slots
        self._gens[slot][0] = k + 1  # after the pixels: from now on the slot holds message k
        self.control[_WRITTEN] = k + 1
        return {"segment": self.name, "slot": slot, "gen": k + 1, "shape": list(image.shape), "dtype": image.dtype.name}

    def close(self, unlink: bool = True) -> None:
        super().close()
        if unlink:
            (SHM_DIR / self.name).unlink(missing_ok=True)


class RingReader:
    """The reader's side: maps the segment a reference names (only names with the run's prefix), checks
    the reference, returns a view, checks the generation afterwards and releases credits."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ring: _Mapped | None = None

    def _attach(self, name: str) -> _Mapped:
        if self.ring is not None and self.ring.name == name:
            return self.ring
        if not isinstance(name, str) or not _NAME.match(name) or not name.startswith(self.prefix):
            raise RingError(f"segment {name!r} is not one of this run's (expected a name starting {self.prefix!r})")
        try:
            fd = os.open(SHM_DIR / name, os.O_RDWR)
        except OSError:
            raise RingError(f"segment {name!r} does not exist (its writer has gone)") from None
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, 48, 0)
        except OSError:
            os.close(fd)
            raise
        magic, slots, slot_bytes = struct.unpack("<3Q", head[:24]) if len(head) >= 24 else (0, 0, 0)
        if magic != MAGIC or not 0 < slots <= 4096 or not 0 < slot_bytes <= 1 << 26 or size != _CONTROL + slots * slot_stride(slot_bytes):
            os.close(fd)
            raise RingError(f"segment {name!r} is not a frame ring of this version")
        if self.ring is not None:
            self.ring.close()  # a restarted writer made a new segment: the old one is gone
        self.ring = _Mapped(name, fd, size)
        self.ring.control[_READER] = os.getpid()
        return self.ring

    def resolve(self, ref) -> np.ndarray:
        """A view of the referenced frame; RingError names what is wrong with a bad reference."""
        if not isinstance(ref, dict):
            raise RingError("shm reference is not an object")
        slot, gen, shape, dtype = ref.get("slot"), ref.get("gen"), ref.get("shape"), ref.get("dtype")
        ring = self._attach(ref.get("segment"))
        if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot < ring.slots:
            raise RingError(f"shm slot {slot!r} is out of range 0..{ring.slots - 1}")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1 or (gen - 1) % ring.slots != slot:
            raise RingError(f"shm generation {gen!r} does not belong to slot {slot}")
        if dtype not in _DTYPES:
            raise RingError(f"shm dtype {dtype!r} is not one of {sorted(_DTYPES)}")
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 3
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in shape)):
            raise RingError(f"shm shape {shape!r} is not a list of 1..3 sizes in 1..65536")
        if math.prod(shape) * _DTYPES[dtype].itemsize > ring.slot_bytes:
            raise RingError(f"shm shape {shape} {dtype} is larger than the ring's {ring.slot_bytes}-byte slots")
        return ring.pixels(slot, tuple(shape), _DTYPES[dtype])

    def still_valid(self, ref: dict) -> bool:
        """True while the slot still holds the referenced message (check after using the pixels)."""
        ring = self.ring
        return ring is not None and ring.name == ref["segment"] and ring.gen(ref["slot"]) == ref["gen"]

    def release(self, ref: dict) -> None:
        """The reader is done with this message and every earlier one: the writer may reuse their slots."""
        ring = self.ring
        if ring is not None and ring.name == ref["segment"] and int(ring.control[_RELEASED]) < ref["gen"]:
            ring.control[_RELEASED] = ref["gen"]
            if int(ring.control[_READER]) != os.getpid():
                ring.control[_READER] = os.getpid()  # the writer may have written us off as dead; we are back

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None
