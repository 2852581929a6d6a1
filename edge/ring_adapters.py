"""The two ends of a shared-memory frame ring (edge/shared_frames.py) as a stage process uses them.

RingOut (the source process): the source decodes its next frame straight into a slot (`slot_for`), and
`by_reference` swaps a frame's image for a reference to its slot before the message goes on the socket.
RingIn (the next process): `resolve` puts the slot's pixels back into a message at the entrance;
`in_time` and `done_with` check the slot's generation before and after the stage used it. A slot the
writer reused meanwhile is a counted drop ("overwritten"), and the next frame's gap is explained by it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge import bus
from edge.messages import Message
from edge.shared_frames import FrameRing, RingError, RingReader

log = logging.getLogger(__name__)


class RingOut:
    """Frames out through a ring of `slots` slots named from `prefix`; made at the first frame (its size)."""

    def __init__(self, prefix: str, slots: int, *, block: bool, wait: Callable[[], bool], process: str) -> None:
        self.prefix = prefix
        self.slots = slots
        self.block = block  # the reader's entrance blocks: wait for a free slot instead of overwriting
        self.wait = wait  # called while waiting for a slot; False stops the wait
        self.process = process
        self.ring: FrameRing | None = None
        self.failed = False
        self.frames = 0  # frames sent by reference

    def slot_for(self, shape: tuple, dtype: str):
        """Where the source decodes its next frame: a slot of the ring (None: its own buffer)."""
        if self.ring is None:
            return None
        return self.ring.claim(shape, dtype, block=self.block, wait=self.wait)

    def by_reference(self, msg: Message) -> Message:
        """A frame whose pixels went into the ring: the same message with a reference instead of the image."""
        image = msg.arrays.get("image")
        if self.failed or image is None or msg.topic != "frame":
            return msg
        if self.ring is None:
            try:
                self.ring = FrameRing.create(self.prefix, self.slots, image.nbytes)
            except (OSError, ValueError) as exc:
                self.failed = True
                log.warning("%s: shared frames unavailable (%s); frames go through the socket", self.process, exc)
                return msg
        ref = self.ring.commit(image, block=self.block, wait=self.wait)
        if ref is None:
            return msg  # larger than a slot (the source changed size) or stopping: inline
        self.frames += 1
        return Message(msg.topic, {**msg.header, "shm": ref}, {k: v for k, v in msg.arrays.items() if k != "image"})

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()  # unlinks the segment (the supervisor removes it too if we are killed)
            self.ring = None


class RingIn:
    """Frames in by reference to rings named from `prefix`; drops are counted in `drops`."""

    def __init__(self, prefix: str, drops: bus.DropLog) -> None:
        self.reader = RingReader(prefix)
        self.drops = drops
        self.frames = 0  # frames received by reference
        self._overwritten = 0  # found overwritten after the entrance, to explain the next frame's gap

    def resolve(self, msg: Message, ref: dict) -> str:
        """Put the referenced slot's pixels into msg as its image; "" or what is wrong ("overwritten": reused)."""
        if "image" in msg.arrays:
            return "frame carries both an image and a shared-memory reference"
        try:
            msg.arrays["image"] = self.reader.resolve(ref)
        except RingError as exc:
            return str(exc)
        if not self.reader.still_valid(ref):
            self.reader.release(ref)
            return "overwritten"
        self.frames += 1
        return ""

    def in_time(self, ref: dict) -> bool:
        """Whether the slot still holds the frame after its wait in the queue (a live source never waits)."""
        if self.reader.still_valid(ref):
            return True
        self._drop(ref, "its shared-memory slot was reused before the stage was done with it")
        return False

    def done_with(self, ref: dict) -> bool:
        """The stage is done with the frame: release its slot; False when the writer reused it meanwhile, so
        what the stage made of it is not trusted."""
        if self.reader.still_valid(ref):
            self.reader.release(ref)
            return True
        self._drop(ref, "its shared-memory slot was reused before the stage was done with it")
        return False

    def take_overwritten(self) -> int:
        """Frames found overwritten since the last call: a hole right before the next frame, explained."""
        n, self._overwritten = self._overwritten, 0
        return n

    def _drop(self, ref: dict, why: str) -> None:
        self.reader.release(ref)
        self._overwritten += 1
        self.drops.drop("overwritten", why)

    def close(self) -> None:
        self.reader.close()
