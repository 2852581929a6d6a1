"""The shared-memory frame ring: frames written by one side are read by the other, an overwritten slot
is caught, a blocking writer waits for credits, a dead reader's credits come back, names are removed."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edge import shared_frames as sf

pytestmark = pytest.mark.skipif(not sf.available(), reason="no writable /dev/shm on this host")


@pytest.fixture
def prefix():
    p = f"mestream-test{os.getpid()}-{time.monotonic_ns() % 10**6}-"
    yield p
    sf.remove_segments(p)


def _frame(value, shape=(4, 6, 3)):
    return np.full(shape, value, np.uint8)


def test_a_frame_decoded_into_a_claimed_slot_is_read_back_by_the_reader(prefix):
    ring = sf.FrameRing.create(prefix, slots=4, slot_bytes=72)
    view = ring.claim((4, 6, 3), np.uint8, block=True)
    view[:] = 7
    ref = ring.commit(view)
    reader = sf.RingReader(prefix)
    image = reader.resolve(ref)
    assert image.shape == (4, 6, 3) and (image == 7).all()
    assert reader.still_valid(ref)
    reader.close()
    ring.close()


def test_a_frame_from_elsewhere_is_copied_into_the_next_slot(prefix):
    ring = sf.FrameRing.create(prefix, slots=4, slot_bytes=72)
    refs = [ring.commit(_frame(i)) for i in range(3)]
    reader = sf.RingReader(prefix)
    assert [int(reader.resolve(r)[0, 0, 0]) for r in refs] == [0, 1, 2]
    assert [r["slot"] for r in refs] == [0, 1, 2] and [r["gen"] for r in refs] == [1, 2, 3]
    ring.close()


def test_a_slot_overwritten_while_the_reader_used_it_is_detected(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    reader = sf.RingReader(prefix)
    first = ring.commit(_frame(1))
    image = reader.resolve(first)
    ring.commit(_frame(2))
    assert reader.still_valid(first)  # the other slot was written
    ring.commit(_frame(3), block=False)  # a live source never waits: slot 0 again
    assert (image == 3).all() and not reader.still_valid(first)
    ring.close()


def test_a_slot_being_written_is_not_valid_for_the_old_message(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    reader = sf.RingReader(prefix)
    first = ring.commit(_frame(1))
    reader.resolve(first)
    ring.commit(_frame(2))
    ring.claim((4, 6, 3), np.uint8, block=False)  # decoding into slot 0 has begun
    assert not reader.still_valid(first)
    ring.close()


def test_a_frame_larger_than_a_slot_goes_inline(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    assert ring.commit(_frame(1, (5, 6, 3))) is None
    assert ring.claim((5, 6, 3), np.uint8, block=True) is None
    ring.close()


def test_block_mode_waits_until_the_reader_releases(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    reader = sf.RingReader(prefix)
    refs = [ring.commit(_frame(i), block=True) for i in range(2)]
    reader.resolve(refs[0])
    waits = []
    done = []

    def write():
        done.append(ring.commit(_frame(9), block=True, wait=lambda: waits.append(1) or True))

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.1)
    assert not done and waits, "the writer must wait while both slots are unread"
    assert (reader.resolve(refs[0]) == 0).all()  # nothing was overwritten
    reader.release(refs[0])
    t.join(2)
    assert done and done[0]["slot"] == 0 and done[0]["gen"] == 3
    ring.close()


def test_block_mode_gives_up_when_asked_to_stop(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    sf.RingReader(prefix).resolve(ring.commit(_frame(0)))
    ring.commit(_frame(1))
    assert ring.claim((4, 6, 3), np.uint8, block=True, wait=lambda: False) is None
    ring.close()


def test_a_dead_readers_credits_are_freed_for_its_successor(prefix):
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    refs = [ring.commit(_frame(i), block=True) for i in range(2)]
    # a reader process attaches and dies without releasing anything
    code = ("import sys; from edge import shared_frames as sf; r = sf.RingReader(sys.argv[1]); "
            "r.resolve({'segment': sys.argv[2], 'slot': 0, 'gen': 1, 'shape': [4, 6, 3], 'dtype': 'uint8'})")
    subprocess.run([sys.executable, "-c", code, prefix, refs[0]["segment"]], check=True)
    ref = ring.commit(_frame(5), block=True, wait=lambda: True)
    assert ref is not None and ref["gen"] == 3
    ring.close()


@pytest.mark.parametrize("change, message", [
    ({"segment": "other-run-1"}, "not one of this run's"),
    ({"slot": 4}, "out of range"),
    ({"slot": -1}, "out of range"),
    ({"gen": 2}, "does not belong"),
    ({"shape": [100, 100, 3]}, "larger than"),
    ({"shape": "4x6"}, "not a list"),
    ({"dtype": "object"}, "dtype"),
])
def test_a_bad_reference_is_refused_with_a_line_that_names_it(prefix, change, message):
    ring = sf.FrameRing.create(prefix, slots=4, slot_bytes=72)
    ref = {**ring.commit(_frame(1)), **change}
    with pytest.raises(sf.RingError, match=message):
        sf.RingReader(prefix).resolve(ref)
    ring.close()


def test_a_segment_that_has_gone_is_a_bad_reference(prefix):
    ring = sf.FrameRing.create(prefix, slots=4, slot_bytes=72)
    ref = ring.commit(_frame(1))
    ring.close()
    with pytest.raises(sf.RingError, match="does not exist"):
        sf.RingReader(prefix).resolve(ref)


def test_a_reader_follows_a_restarted_writers_new_segment(prefix):
    old = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    reader = sf.RingReader(prefix)
    assert (reader.resolve(old.commit(_frame(1))) == 1).all()
    old.close()
    time.sleep(0.001)
    new = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    assert new.name != old.name
    assert (reader.resolve(new.commit(_frame(2))) == 2).all()
    new.close()


def test_close_and_remove_segments_leave_nothing_in_dev_shm(prefix):
    a = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    a.close()
    assert not list(sf.SHM_DIR.glob(prefix + "*"))
    sf.FrameRing.create(prefix, slots=2, slot_bytes=72)  # a writer killed before its close
    assert sf.remove_segments(prefix) == 1
    assert not list(sf.SHM_DIR.glob(prefix + "*"))


def test_slots_sent_to_a_reader_that_never_attached_are_freed_after_a_while(prefix, monkeypatch):
    monkeypatch.setattr(sf, "ORPHAN_WAIT_S", 0.2)
    ring = sf.FrameRing.create(prefix, slots=2, slot_bytes=72)
    ring.commit(_frame(0), block=True)
    ring.commit(_frame(1), block=True)
    t = time.monotonic()
    ref = ring.commit(_frame(2), block=True, wait=lambda: True)
    assert ref is not None and 0.2 <= time.monotonic() - t < 2
    ring.close()


