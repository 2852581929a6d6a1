"""What `mestream run --preview` costs the pipeline: CPU of the preview tap, side by side with the track stage.

The tap runs inside the track process (frames) and the spot process (signal points). Per source frame it
does a time check and, at most `preview_fps` times a second, a JPEG of the frame and of the crop. This
measures, on real frames and the real track stage's face messages:
  - E: CPU ms of one preview frame (frame JPEG + crop JPEG + landmarks back to source pixels + send),
  - O: CPU ms of a throttled offer (the common case: nothing to send),
  - T: CPU ms per frame of the track stage itself (the process the tap shares),
and prints the preview's share of that process at a given camera rate: (P*E + R*O) / (R*T).

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/preview_cost.py [--video V] [--frames 120]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import zmq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(Path(os.environ.get("MESTREAM_ASSETS", "")) / "videos" / "pyfeat_single_face.mp4"))
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--preview-fps", type=float, default=10.0)
    args = parser.parse_args()

    from edge.messages import Message
    from edge.preview.tap import PreviewTap
    from edge.stages.face_tracking import FaceTracking
    from edge.tools.track_bench import read_frames

    frames = read_frames(args.video, args.frames)
    track = FaceTracking()
    track.open()
    pairs = []
    c0 = time.process_time()
    for n, image in enumerate(frames):
        frame = Message("frame", {"seq": n, "t_capture_ns": n, "fps": 30.0}, {"image": image})
        out = track.process(frame)
        pairs.append((frame, out))
    track_ms = 1000 * (time.process_time() - c0) / len(frames)
    track.close()

    ctx = zmq.Context()
    sub_addr = "ipc:///tmp/mestream-preview-cost"
    sub = ctx.socket(zmq.SUB)  # a real reader, so the PUB really encodes and sends
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.bind(sub_addr)
    tap = PreviewTap(ctx, sub_addr, "track", fps=args.preview_fps)
    time.sleep(0.3)
    found = [(f, o) for f, o in pairs if any(m.topic == "face" and m.header.get("found") for m in o)]
    # E: every offer sends (period 0)
    tap.period_s = 0.0
    c0 = time.process_time()
    for frame, out in found:
        tap.offer(frame, out)
    encode_ms = 1000 * (time.process_time() - c0) / len(found)
    # O: throttled (the last send was just now)
    tap.period_s = 1e9
    c0 = time.process_time()
    for _ in range(20):
        for frame, out in pairs:
            tap.offer(frame, out)
    offer_ms = 1000 * (time.process_time() - c0) / (20 * len(pairs))
    tap.close()
    sub.close(0)
    ctx.term()

    print(f"{args.video}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, {len(found)} with a face")
    print(f"track stage            T = {track_ms:7.3f} CPU ms/frame")
    print(f"preview frame (JPEGs)  E = {encode_ms:7.3f} CPU ms each, at most {args.preview_fps:g}/s")
    print(f"throttled offer        O = {offer_ms:7.4f} CPU ms/frame")
    for rate in (30.0, 200.0):
        share = (args.preview_fps * encode_ms + rate * offer_ms) / (rate * track_ms)
        print(f"at {rate:5.0f} fps: preview {args.preview_fps * encode_ms + rate * offer_ms:6.1f} CPU ms/s vs track "
              f"{rate * track_ms:7.1f} CPU ms/s -> +{100 * share:.1f}% of the track process")


if __name__ == "__main__":
    main()
