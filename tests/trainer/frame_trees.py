"""Dataset frame trees for the loader tests, built in tmp_path from a real face clip (never copied into the repo).

    frames = read_frames(assets / FACE_VIDEO)                    # every frame, 160x120
    write_frames(root / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(46, 87)], frames)
"""

from __future__ import annotations

from pathlib import Path

import cv2

FACE_VIDEO = "videos/casme2_sub01_EP02_01f.avi"  # the real CASME II clip (44 frames), under MESTREAM_ASSETS


def read_frames(video: Path, size: tuple[int, int] | None = (160, 120)) -> list:
    """Every frame of a video, resized to `size` (width, height) with INTER_AREA; None keeps them as they are."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    return frames


def write_frames(folder: Path, names, frames) -> None:
    """One image per name in a new folder, cycling through `frames` when there are more names than frames."""
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), frames[i % len(frames)])
