"""capture: frames from a camera, a file, a network stream or a GStreamer pipeline, numbered and timed.

Sources are URIs: `cam:N` (webcam N), a video file path, `rtsp://` / `http(s)://` URLs, or a GStreamer
pipeline string (anything containing " ! ", ending in appsink). Every frame gets a sequence number and
a monotonic capture time in ns. Files are paced at their own timestamps (so variable-frame-rate files
play as recorded) unless `fast` is set; live sources that fail are reopened with backoff, and frames
that fail to decode in a file are skipped and counted.

A source may change its frames mid-stream (a camera renegotiating its mode, a stream switching
resolution, a file joined from two recordings). With color = "auto" the pixel format stays the one the
stream started with (grey stays grey, colour stays 3-channel BGR, alpha is dropped, 16-bit becomes
8-bit), so downstream stages always see one layout. A change of size (or of the format itself) is
counted in `format_changes`, announced by a "source_format" status, and the first frame of the new
format carries gap=1, so the tracker looks for the face afresh and the spotter starts a new window
instead of comparing frames of two different geometries.

    cap = Capture("clip.mp4", fast=True); cap.open(); msg = cap.read()
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.messages import Message, status
from edge.topology import stage_options_of
from engines.errors import MestreamError

if TYPE_CHECKING:
    from edge.process import RunOptions

log = logging.getLogger(__name__)

COLORS = ("auto", "bgr", "mono")
# Frames are decoded into a few buffers used again and again once nothing holds them (the next process's
# socket has sent them, the message is gone): a fresh 900 KB frame per read cost the capture process page
# faults on every frame (about 37 a frame at 200 fps), as its memory went back to the system and came again.
FRAME_POOL = 8


@dataclass(frozen=True)
class CaptureOptions:
    max_width: int = 0  # 0 = full size; wider frames are downscaled once here, so no later stage pays for it
    color: str = "auto"  # "auto" keeps what the source gives; "mono" sends (H, W) grey; "bgr" forces colour
    reconnect_max_s: float = 2.0  # a live source that fails is reopened with backoff up to this delay (< hang timeout)
    bad_frames_max: int = 25  # a file with this many undecodable frames in a row has ended
    repeat: int = 1  # play a file this many times as one stream (benchmarks, demos); seq and time run on


def source_kind(uri: str) -> str:
    if uri.startswith("cam:"):
        return "camera"
    if uri.startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://")):
        return "url"
    if " ! " in uri:
        return "gstreamer"
    return "file"


def build(options: dict[str, Any], run: RunOptions, resume_seq: int = 0) -> Capture:
    """The capture stage from its [stages.capture] table, reading the run's source from resume_seq on."""
    return Capture(run.source, fast=run.fast, options=stage_options_of("capture", options, CaptureOptions), start_seq=resume_seq)


class Capture:
    """A Source stage: read() returns the next "frame" message, or None at the end of a file."""

    name = "capture"

    def __init__(self, source: str, *, fast: bool = False, options: CaptureOptions = CaptureOptions(), start_seq: int = 0) -> None:
        if options.max_width < 0:
            raise MestreamError(f"capture max_width = {options.max_width}: expected 0 (full size) or a width in pixels")
        if options.color not in COLORS:
            raise MestreamError(f"capture color = {options.color!r}: expected one of {list(COLORS)}")
        if options.reconnect_max_s <= 0 or options.bad_frames_max < 1:
            raise MestreamError("capture reconnect_max_s and bad_frames_max must be positive")
        if options.repeat < 1:
            raise MestreamError(f"capture repeat = {options.repeat}: expected 1 or more plays of the file")
        self.source = source
        self.kind = source_kind(source)
        self.fast = fast
        self.options = options
        self.live = self.kind != "file"
        self.fps = 0.0
        self.bad_frames = 0
        self.reconnects = 0
        self._cap = None
        self._seq = start_seq  # a restarted capture process continues a file where it stopped
        self._t0_ns = 0
        self._t0_media_ms = None
        self._down = False
        self._delay = 0.25
        self._plays = 1
        self._gap_next = 0
        self._media_offset_ms = 0.0
        self._last_media_ms = -1.0
        self.format_changes = 0
        self._format: tuple | None = None  # (shape, dtype) of the source's frames so far
        self._first_layout: int | None = None  # ndim of the first frame sent: 2 grey, 3 colour
        self._pending: Message | None = None  # a frame held back one read, behind its "source_format" status
        self._pool: list[np.ndarray] = []  # decoded frames' buffers, for reuse (FRAME_POOL)
        # Set by the host when frames leave through shared memory (edge/shared_frames.py): (shape, dtype)
        # -> a slot to decode into, or None. Used once the last frame went out exactly as decoded.
        self.out_buffer = None
        self._direct = False

    # -- opening ---------------------------------------------------------------------------------
    def _open_capture(self):
        import cv2

        previous = cv2.getLogLevel()
        cv2.setLogLevel(0)  # our one-line error says it better
        try:
            if self.kind == "camera":
                index_text = self.source[4:]
                if not index_text.isdigit():
                    raise MestreamError(f"source {self.source!r}: camera index {index_text!r} is not a number; use cam:0, cam:1, ...")
                cap = cv2.VideoCapture(int(index_text))
            elif self.kind == "url":
                cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG)
            elif self.kind == "gstreamer":
                if "GStreamer:                   YES" not in cv2.getBuildInformation():
                    raise MestreamError(f"source {self.source!r} is a GStreamer pipeline but this OpenCV has no GStreamer; use a file/URL/cam:N or an OpenCV built with GStreamer")
                cap = cv2.VideoCapture(self.source, cv2.CAP_GSTREAMER)
            else:
                path = Path(self.source)
                if not path.is_file():
                    raise MestreamError(f"source {self.source!r}: no such file; give a video file, cam:N, an rtsp:// or http:// URL or a GStreamer pipeline")
                cap = cv2.VideoCapture(str(path))
        finally:
            cv2.setLogLevel(previous)
        return cap

    def open(self) -> None:
        cap = self._open_capture()
        if not cap.isOpened():
            cap.release()
            if self.kind == "camera":
                raise MestreamError(f"source {self.source!r}: no camera at index {self.source[4:]}; check `ls /dev/video*` and pick an existing index")
            raise MestreamError(f"source {self.source!r} cannot be opened as video; check the path/URL and that it is a video OpenCV can decode")
        self._cap = cap
        if self.kind == "file" and self._seq:
            import cv2

            cap.set(cv2.CAP_PROP_POS_FRAMES, self._seq)
        self.fps = self._probe_fps(cap)
        if self.kind == "file":
            # Variable-frame-rate files report a misleading fps; measure it from their timestamps instead.
            measured = self._measure_file_fps()
            if measured:
                self.fps = measured
        if self.fps <= 0:
            self.fps = 30.0
            log.warning("source %s reports no frame rate; assuming 30 fps", self.source)
        self._t0_ns = time.monotonic_ns()

    @staticmethod
    def _probe_fps(cap) -> float:
        import cv2

        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return fps if 0 < fps < 10000 else 0.0

    def _measure_file_fps(self) -> float:
        import cv2

        probe = cv2.VideoCapture(self.source)
        stamps = []
        try:
            for _ in range(24):
                if not probe.grab():
                    break
                stamps.append(probe.get(cv2.CAP_PROP_POS_MSEC))
        finally:
            probe.release()
        deltas = np.diff(np.asarray(stamps[1:], dtype=np.float64))  # the first stamp is often 0 on every file
        deltas = deltas[deltas > 0]
        if len(deltas) < 3:
            return 0.0
        fps = 1000.0 / float(np.median(deltas))
        return round(fps, 3) if 1 <= fps <= 10000 else 0.0

    def close(self) -> None:
        self._pool = []
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # -- reading ---------------------------------------------------------------------------------
    def read(self) -> Message | None:
        import cv2

        if self._pending is not None:
            msg, self._pending = self._pending, None
            return msg
        if self._down:
            return self._try_reopen()
        if self._cap is None:
            raise RuntimeError("Capture.read() before open()")
        bad = 0
        while True:
            ok, image = self._read_into_pool()
            if ok and image is not None and image.size:
                break
            if self.live:
                # Returns at once with a status, so the host keeps sending heartbeats while the source is down.
                self._down = True
                self._delay = 0.25
                self._cap.release()
                self._cap = None
                return status(self.name, "source_lost", f"{self.source} stopped delivering frames; reopening with backoff")
            # A file: a frame that does not decode is skipped and counted; many in a row is the end.
            total = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
            pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
            bad += 1
            if bad >= self.options.bad_frames_max or not (0 < pos < total - 1):
                if self._plays >= self.options.repeat:
                    return None
                # Play again as the same stream: media time continues one frame period after the last frame.
                self._plays += 1
                self._media_offset_ms = self._last_media_ms + 1000.0 / self.fps
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                bad = 0
                continue
            self.bad_frames += 1
        t_capture_ns = time.monotonic_ns()
        if self.live:
            media_ms = (t_capture_ns - self._t0_ns) / 1e6
        else:
            media_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) + self._media_offset_ms
            self._last_media_ms = media_ms
        if not self.live and not self.fast:
            t_capture_ns = self._pace(media_ms)
        changed = self._format_changed(image)  # judged on what the source gave, before conversion
        decoded = image
        image = self._convert(image)
        self._direct = image is decoded  # no conversion: the next frame can be decoded where it is sent from
        if self._first_layout is None:
            self._first_layout = image.ndim
        if changed:
            self._gap_next = max(self._gap_next, 1)
        msg = Message(
            "frame",
            {
                "seq": self._seq,
                "t_capture_ns": t_capture_ns,
                "t_media_ms": round(media_ms, 3),
                "fps": self.fps,
                "source": self.source,
                "gap": self._gap_next,
            },
            {"image": image},
        )
        self._gap_next = 0
        self._seq += 1
        if changed:
            self._pending = msg
            return status(self.name, "source_format", f"{self.source}: frames changed {changed} at seq {msg.header['seq']} "
                          f"(change {self.format_changes}); downstream starts afresh",
                          at_seq=msg.header["seq"], format_changes=self.format_changes)
        return msg

    def _read_into_pool(self) -> tuple[bool, np.ndarray | None]:
        """cap.read() into a pooled buffer that nothing refers to any more, or a new one."""
        if type(self._cap).__module__ != "cv2":  # a stand-in reader (tests): read() takes no output buffer
            return self._cap.read()
        if self.out_buffer is not None and self._direct and self._format is not None:
            slot = self.out_buffer(*self._format)
            if slot is not None:
                return self._cap.read(slot)  # OpenCV reallocates (a new array) if the frame no longer fits
        # references to a free buffer: the pool's list, the loop variable and getrefcount's argument. A
        # message, a view of it or ZeroMQ's zero-copy send each hold one more until they are done with it.
        free = next((b for b in self._pool if sys.getrefcount(b) <= 3), None)
        ok, image = self._cap.read(free) if free is not None else self._cap.read()
        if ok and image is not None and image is not free:  # a first frame, or OpenCV had to reallocate
            if free is not None:
                self._pool.remove(free)  # a size or format change: that buffer no longer fits
            if len(self._pool) < FRAME_POOL:
                self._pool.append(image)
        return ok, image

    def _format_changed(self, image: np.ndarray) -> str:
        """'' while frames keep their size and format; else 'from A to B', counted."""
        fmt = (image.shape, image.dtype.name)
        previous, self._format = self._format, fmt
        if previous is None or previous == fmt:
            return ""
        self.format_changes += 1
        describe = lambda f: "x".join(str(d) for d in f[0]) + " " + f[1]  # noqa: E731
        return f"from {describe(previous)} to {describe(fmt)}"

    def _pace(self, media_ms: float) -> int:
        """Sleep until this frame's own timestamp (VFR-safe); returns the capture time to stamp."""
        if self._t0_media_ms is None:
            self._t0_media_ms = media_ms
            self._t0_ns = time.monotonic_ns()
        due = self._t0_ns + int((media_ms - self._t0_media_ms) * 1e6)
        now = time.monotonic_ns()
        if due > now:
            time.sleep((due - now) / 1e9)
        return time.monotonic_ns()

    def _convert(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if image.dtype != np.uint8:  # 16-bit (or float) sensors: the stages work on 8-bit frames
            if image.dtype == np.uint16:
                image = (image >> 8).astype(np.uint8)
            else:
                image = np.clip(image, 0, 255).astype(np.uint8)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        elif image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)  # alpha means nothing to a face
        if self.options.color == "auto" and self._first_layout is not None:
            # keep the layout the stream started with, so a mid-stream switch is not a new kind of frame
            started_grey = self._first_layout == 2
            if started_grey and image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            elif not started_grey and image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self.options.max_width and image.shape[1] > self.options.max_width:
            scale = self.options.max_width / image.shape[1]
            image = cv2.resize(image, (self.options.max_width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        if self.options.color == "mono" and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif self.options.color == "bgr" and image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return image

    def _try_reopen(self) -> Message:
        """One reopen attempt after a backoff delay; a status says whether the source is back."""
        time.sleep(self._delay)
        try:
            cap = self._open_capture()
        except MestreamError:
            cap = None
        if cap is not None and cap.isOpened():
            self._cap = cap
            self._down = False
            self._gap_next = 1  # the frames of the outage never existed: the spotter must not bridge them
            self.reconnects += 1
            return status(self.name, "source_back", f"{self.source} reopened (reconnect {self.reconnects})")
        if cap is not None:
            cap.release()
        self._delay = min(self._delay * 2, self.options.reconnect_max_s)
        return status(self.name, "source_retry", f"{self.source} still unavailable; next try in {self._delay:.2f} s")
