"""The tiled view of several sources: every source's latest preview frame in one image, for `mestream preview`.

Tiles are laid out in a near-square grid (columns = ceil(sqrt(n)), in the order the sources first came),
each frame shrunk to fit its tile with its aspect kept (black bars), its face box drawn, and its name in a
bar across the top; a source whose frame shows no face says so. The composition runs in the viewer, from the
JPEGs the taps already send, so the pipeline pays nothing for it.

    image, layout = tile_frames([("front", jpeg, {"width": 640, "height": 480, "found": True, "box": [...]})])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FACE = (160, 214, 6)  # BGR of the page's face-box colour (#06d6a0)
NO_FACE = (111, 71, 239)  # #ef476f


def grid(n: int) -> tuple[int, int]:
    """(columns, rows) for n tiles: 1 -> 1x1, 2 -> 2x1, 3-4 -> 2x2, 5-6 -> 3x2, 7-9 -> 3x3, 10 -> 4x3."""
    columns = max(1, math.ceil(math.sqrt(n)))
    return columns, max(1, math.ceil(n / columns))


def tile_frames(frames: list[tuple[str, bytes, dict[str, Any]]], tile_width: int = 480,
                tile_height: int = 360) -> tuple[np.ndarray, dict[str, Any]]:
    """The grid image (BGR) and its layout {"columns", "rows", "tile": [w, h], "sources": [names in tile order]}."""
    import cv2

    columns, rows = grid(len(frames))
    canvas = np.zeros((rows * tile_height, columns * tile_width, 3), np.uint8)
    for i, (name, jpeg, meta) in enumerate(frames):
        x0, y0 = (i % columns) * tile_width, (i // columns) * tile_height
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if jpeg else None
        if image is not None:
            h, w = image.shape[:2]
            scale = min(tile_width / w, tile_height / h)
            sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
            ox, oy = x0 + (tile_width - sw) // 2, y0 + (tile_height - sh) // 2
            canvas[oy : oy + sh, ox : ox + sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
            # the box is in source pixels; the JPEG may have been shrunk by the tap: scale by the source's width
            to_tile = sw / float(meta.get("width") or w)
            if meta.get("found") and meta.get("box"):
                bx, by, bw, bh = (float(v) * to_tile for v in meta["box"][:4])
                cv2.rectangle(canvas, (ox + round(bx), oy + round(by)), (ox + round(bx + bw), oy + round(by + bh)), FACE, 2)
        cv2.rectangle(canvas, (x0, y0), (x0 + tile_width - 1, y0 + 21), (0, 0, 0), -1)
        found = bool(meta.get("found"))
        label = name + ("" if found else "  (no face)")
        cv2.putText(canvas, label, (x0 + 6, y0 + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230) if found else NO_FACE, 1, cv2.LINE_AA)
        cv2.rectangle(canvas, (x0, y0), (x0 + tile_width - 1, y0 + tile_height - 1), (60, 51, 45), 1)
    layout = {"columns": columns, "rows": rows, "tile": [tile_width, tile_height], "sources": [name for name, _, _ in frames]}
    return canvas, layout


def tiles_jpeg(frames: list[tuple[str, bytes, dict[str, Any]]], quality: int = 80) -> bytes:
    """The grid as JPEG: 480x360 tiles up to four sources, 320x240 beyond (ten sources: 1280x720)."""
    import cv2

    image, _ = tile_frames(frames, *((480, 360) if len(frames) <= 4 else (320, 240)))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""
