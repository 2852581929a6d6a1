"""The spot stage's memory is steady: allocated once for its window, never following the window's fill.

Measured with tracemalloc (numpy reports its buffers to it), so the figures count what the stage holds,
not what the allocator or the machine happens to do: the test is exact, not a flaky RSS reading.
"""

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from edge.array_ring import ArrayRing
from edge.messages import Message
from edge.spotting.params import SpotParams
from edge.spotting.regional import RegionalSpotter

S = 128
FPS = 100.0  # a 4.1 s window of 412 frames: the whole test stays a few seconds
EVERY_FRAME = SpotParams(max_rate_hz=0.0)  # every frame analysed, so the window holds all 412


def _faces(n: int, gap_every: int):
    """Face messages with fresh arrays per frame (as received off a socket), a gap every `gap_every`."""
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (S, S), dtype=np.uint8)
    color = np.repeat(base[:, :, None], 3, axis=2)
    seq = 0
    for i in range(n):
        seq += 1 + (3 if gap_every and i % gap_every == gap_every - 1 else 0)
        crop = base.copy()
        crop[i % S, :] ^= 1  # a one-grey-level flicker: the signal stays quiet, nothing is spotted
        yield Message("face", {"seq": seq, "t_capture_ns": seq * 10_000_000, "fps": FPS, "found": True,
                               "box": [0, 0, S, S]}, {"crop": crop, "crop_color": color.copy()})


def test_array_ring_reuses_one_block_and_keeps_each_slot_for_a_whole_lap():
    ring = ArrayRing(slots=3)
    kept = [ring.put(np.full((4, 4), v, np.uint8)) for v in range(3)]
    nbytes = ring.nbytes
    assert [int(k[0, 0]) for k in kept] == [0, 1, 2]
    ring.put(np.full((4, 4), 9, np.uint8))  # the fourth put reuses the first slot
    assert int(kept[0][0, 0]) == 9 and int(kept[1][0, 0]) == 1
    assert ring.nbytes == nbytes == 3 * 16


def test_array_ring_starts_a_new_block_when_the_shape_changes_and_old_views_stay_valid():
    ring = ArrayRing(slots=2)
    old = ring.put(np.ones((2, 2), np.uint8))
    new = ring.put(np.zeros((3, 3), np.uint8))
    assert new.shape == (3, 3) and int(old.sum()) == 4
    with pytest.raises(ValueError):
        ArrayRing(0)


def test_the_spotter_holds_no_reference_to_the_arrays_it_was_fed():
    # In a pipeline process the arrays are views of received ZeroMQ frames: held for the window's
    # seconds, their memory follows the window's fill. The spotter copies them and lets them go.
    spotter = RegionalSpotter()
    spotter.open()
    refs = []
    for msg in _faces(50, gap_every=0):
        refs.append((weakref.ref(msg.arrays["crop"]), weakref.ref(msg.arrays["crop_color"])))
        spotter.process(msg)
        del msg
    gc.collect()
    assert all(r() is None for pair in refs for r in pair)
    spotter.close()


def test_the_spotter_memory_neither_grows_nor_follows_the_window_through_restarts():
    spotter = RegionalSpotter(EVERY_FRAME)
    spotter.open()
    cycle = 700  # each gap restarts the window: empty, then full again (412 frames)
    tracemalloc.start()
    try:
        full, readings = [], []
        for i, msg in enumerate(_faces(3 * cycle, gap_every=cycle)):
            spotter.process(msg)
            if i >= 500 and i % 25 == 0:  # warm: one full window seen
                readings.append(tracemalloc.get_traced_memory()[0])
            if i % cycle == cycle - 2:  # the window is full, just before a gap: the same state every cycle
                full.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        spotter.close()
    mb = lambda b: f"{b / 2**20:.2f} MB"  # noqa: E731
    # The window's crops (412 x 64 KB = 26 MB) are counted, and are there whatever the window's fill: a
    # restart used to free them all and the refill to take them back (what remains is the window's
    # small per-frame bookkeeping, about 5%).
    assert min(readings) > 20 * 2**20, f"the window's crops are not counted ({mb(min(readings))} traced)"
    assert max(readings) < 1.1 * min(readings), f"traced memory ranged {mb(min(readings))}..{mb(max(readings))} after warm-up"
    # In the same state, a cycle later, nothing more is held: 1 KB kept per frame would show as 5%.
    assert full[-1] - full[0] < 0.01 * full[0], f"a full window took {mb(full[0])}, then {mb(full[-1])} two cycles later"
