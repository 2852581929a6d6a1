"""A ring of equally shaped arrays allocated once: a sliding window whose memory does not follow its fill.

A stage that keeps the last N frames' arrays (the spotter keeps seconds of aligned crops) would otherwise
hold the arrays it was given, which in a pipeline process are views of received ZeroMQ frames: their
memory belongs to libzmq's I/O thread, is allocated as the window fills and handed back to the system
when it empties (every window restart), so the process's resident memory swung by the size of the
window (50 MB at 200 fps in the soak) and said nothing about leaks. Copying each array into a slot of
one block allocated up front costs a memcpy per frame and keeps the memory steady from the first full
window on; the received frame is released as soon as the message has been handled.

    ring = ArrayRing(slots=823)
    kept = ring.put(crop)   # a view of a slot: valid until `slots` more puts; copy it to send it on
"""

from __future__ import annotations

import numpy as np


class ArrayRing:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"ArrayRing needs at least one slot, got {slots}")
        self.slots = slots
        self._block: np.ndarray | None = None
        self._next = 0

    def put(self, arr: np.ndarray) -> np.ndarray:
        """Copy `arr` into the next slot and return that slot. A new shape or dtype starts a new block
        (views of the old one stay valid: they keep it alive)."""
        block = self._block
        if block is None or block.shape[1:] != arr.shape or block.dtype != arr.dtype:
            # np.empty: pages become resident as slots are first written, then stay (no growth after one lap)
            block = self._block = np.empty((self.slots, *arr.shape), dtype=arr.dtype)
            self._next = 0
        slot = block[self._next]
        self._next = (self._next + 1) % self.slots
        np.copyto(slot, arr)
        return slot

    @property
    def nbytes(self) -> int:
        return 0 if self._block is None else self._block.nbytes


class ValueWindow:
    """The last `size` values (scalars, or rows of `width`) pushed, in one array allocated up front.

    Their order is not kept: a median or a percentile needs none, and np.asarray of a deque of Python
    floats, which the spotter's adaptive threshold used to pay every frame, cost twice the median itself.

    quiet = ValueWindow(600)
    quiet.push(0.03)
    np.median(quiet.values)   # a view of the filled slots
    """

    def __init__(self, size: int, width: int | None = None, dtype=np.float64) -> None:
        if size < 1:
            raise ValueError(f"ValueWindow needs at least one slot, got {size}")
        self.size = size
        self._data = np.empty((size,) if width is None else (size, width), dtype=dtype)
        self._n = 0
        self._next = 0

    def push(self, value) -> None:
        self._data[self._next] = value
        self._next = (self._next + 1) % self.size
        self._n = min(self._n + 1, self.size)

    def __len__(self) -> int:
        return self._n

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._n]
