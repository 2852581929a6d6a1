"""Several faces per source: id stability, events on the right face, and track + spot fps against faces.

Compose a test video from real face videos (each a `mestream synth` video with its truth CSV), tiled side by
side (and in rows), padded with black, never resized, so each tile's truth holds unchanged:

    python benchmarks/multi_face.py compose /tmp/mf/two.mkv /tmp/mf/evm_s1.mkv /tmp/mf/casme_s1.mkv
    python benchmarks/multi_face.py compose /tmp/mf/four.mkv /tmp/mf/evm_s1.mkv /tmp/mf/casme_s1.mkv \
        /tmp/mf/casme_s2.mkv /tmp/mf/evm_s2.mkv --columns 2

`compose` writes OUT.tiles.json beside the video: each tile's rectangle and its truth CSV (the source's
name with .csv). Then measure, in this process, the track stage (max_faces N) and the spot stage (one
spotter per face) frame by frame:

    python benchmarks/multi_face.py measure /tmp/mf/two.mkv --max-faces 2            # with its tiles.json
    python benchmarks/multi_face.py measure $MESTREAM_ASSETS/videos/opencv_Megamind.avi --max-faces 4

With tiles, every face message is placed in the tile its box centre lies in. Reported: per tile the
frames its face was found on, the ids it had (fragments: more than one), ids seen in more than one tile
(switches: a swapped id); intervals are given to the tile of their face_id (the id's tile) and scored
per tile against that tile's truth (edge/spotting/metrics.py), and against the other tiles' truth (a leak
would hit there). Without tiles (real multi-face videos): ids, their lengths and faces per frame.
Timing: ms per frame of the track stage and of the spot stage (decoding left out), and the chain's fps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.messages import Message
from edge.spotting.metrics import Interval, pool, score_video
from edge.stages.face_tracking import FaceTracking, TrackParams
from edge.stages.spot import FaceSpotters
from edge.tools.synth import read_truth


def compose(out: Path, videos: list[Path], columns: int) -> None:
    caps = [cv2.VideoCapture(str(v)) for v in videos]
    sizes = [(int(c.get(cv2.CAP_PROP_FRAME_WIDTH)), int(c.get(cv2.CAP_PROP_FRAME_HEIGHT))) for c in caps]
    fps = caps[0].get(cv2.CAP_PROP_FPS) or 30.0
    rows = [list(range(i, min(i + columns, len(videos)))) for i in range(0, len(videos), columns)]
    row_h = [max(sizes[i][1] for i in row) for row in rows]
    width = max(sum(sizes[i][0] for i in row) for row in rows)
    tiles = []
    y = 0
    for row, h in zip(rows, row_h):
        x = 0
        for i in row:
            tiles.append({"video": str(videos[i]), "truth": str(videos[i].with_suffix(".csv")), "rect": [x, y, *sizes[i]]})
            x += sizes[i][0]
        y += h
    height = y
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    n = 0
    while True:
        frames = [c.read() for c in caps]
        if not all(ok for ok, _ in frames):
            break
        canvas = np.zeros((height, width, 3), np.uint8)
        for tile, (_, frame) in zip(tiles, frames):
            x, y, w, h = tile["rect"]
            canvas[y : y + h, x : x + w] = frame
        writer.write(canvas)
        n += 1
    writer.release()
    for c in caps:
        c.release()
    Path(str(out) + ".tiles.json").write_text(json.dumps({"fps": fps, "frames": n, "size": [width, height], "tiles": tiles}, indent=1))
    print(f"wrote {out}: {n} frames {width}x{height} at {fps:g} fps, {len(tiles)} tiles")


def tile_of(box: list, tiles: list[dict]) -> int:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    for i, t in enumerate(tiles):
        x, y, w, h = t["rect"]
        if x <= cx < x + w and y <= cy < y + h:
            return i
    return -1


def measure(video: Path, max_faces: int, limit: int | None) -> dict:
    tiles_path = Path(str(video) + ".tiles.json")
    tiles = json.loads(tiles_path.read_text())["tiles"] if tiles_path.is_file() else None
    track = FaceTracking(TrackParams(max_faces=max_faces, color_crop=False))
    spot = FaceSpotters()
    track.open()
    spot.open()
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    t_track = t_spot = 0.0
    faces_per_frame: list[int] = []
    id_frames: dict[int, list[int]] = defaultdict(list)  # id -> frames found
    id_tiles: dict[int, Counter] = defaultdict(Counter)
    tile_ids: dict[int, set] = defaultdict(set)
    tile_found: Counter = Counter()
    statuses: Counter = Counter()
    intervals: list[Message] = []
    n = 0
    cpu0 = time.process_time()
    while limit is None or n < limit:
        ok, frame = cap.read()
        if not ok:
            break
        msg = Message("frame", {"seq": n, "t_capture_ns": int(n * 1e9 / fps), "fps": fps}, {"image": frame})
        t0 = time.perf_counter()
        out = track.process(msg)
        t1 = time.perf_counter()
        spotted = []
        for m in out:
            if m.topic == "face":
                spotted += spot.process(m)
        t2 = time.perf_counter()
        t_track += t1 - t0
        t_spot += t2 - t1
        found = [m for m in out if m.topic == "face" and m.header["found"]]
        faces_per_frame.append(len(found))
        for m in out:
            if m.topic == "status":
                statuses[m.header["event"]] += 1
        for m in found:
            fid = m.header["face_id"]
            id_frames[fid].append(n)
            if tiles:
                t = tile_of(m.header["box"], tiles)
                id_tiles[fid][t] += 1
                tile_ids[t].add(fid)
        if tiles:
            for t in {tile_of(m.header["box"], tiles) for m in found}:
                tile_found[t] += 1
        intervals += [m for m in spotted if m.topic == "interval"]
        n += 1
    intervals += [m for m in spot.flush() if m.topic == "interval"]
    cpu = time.process_time() - cpu0
    track.close()
    spot.close()
    cap.release()
    lengths = [len(f) for f in id_frames.values()]
    result = {
        "video": video.name,
        "frames": n,
        "max_faces": max_faces,
        "faces_per_frame": dict(sorted(Counter(faces_per_frame).items())),
        "face_frames": int(sum(faces_per_frame)),
        "ids": len(id_frames),
        "id_length_median": statistics.median(lengths) if lengths else 0,
        "ids_under_10_frames": sum(x < 10 for x in lengths),
        "statuses": dict(statuses),
        "facemesh_runs": track.landmark_runs,
        "track_ms": round(1000 * t_track / max(n, 1), 2),
        "spot_ms": round(1000 * t_spot / max(n, 1), 2),
        "chain_fps": round(n / max(t_track + t_spot, 1e-9), 1),
        "cpu_ms_per_frame": round(1000 * cpu / max(n, 1), 2),
    }
    if tiles:
        home = {fid: c.most_common(1)[0][0] for fid, c in id_tiles.items()}
        result["switches"] = sum(len(c) > 1 for c in id_tiles.values())  # ids seen in more than one tile
        result["frames_off_home"] = int(sum(sum(c.values()) - c.most_common(1)[0][1] for c in id_tiles.values()))
        per_tile = []
        truths = [read_truth(Path(t["truth"])) for t in tiles]
        for i, t in enumerate(tiles):
            mine = [m for m in intervals if home.get(m.header["face_id"]) == i]
            predicted = [Interval(m.header["onset"]["seq"], m.header["offset"]["seq"], m.header["kind"]) for m in mine]
            own = score_video(predicted, truths[i])["overall"]
            # intervals that miss this face's truth but hit another face's: what a leak would look like
            # (the synth plans may also overlap by chance: every plan starts at frame 30)
            missed = [x for x in predicted if score_video([x], truths[i])["overall"].tp == 0]
            others = pool(score_video(missed, truths[j]) for j in range(len(tiles)) if j != i)["overall"]
            per_tile.append({
                "tile": i,
                "video": Path(t["video"]).name,
                "found_frames": tile_found[i],
                "ids": sorted(tile_ids[i]),
                "fragments": len(tile_ids[i]),
                "intervals": len(mine),
                "box_in_tile": sum(tile_of(m.header["box"], tiles) == i for m in mine),
                "hits_own_truth": own.tp,
                "own_truth": own.truth,
                "f1_own": round(own.f1, 3),
                "misses_own_hits_other": others.tp,
            })
        result["tiles"] = per_tile
    result["intervals"] = [[m.header["face_id"], m.header["onset"]["seq"], m.header["offset"]["seq"], m.header["kind"]] for m in intervals]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compose")
    c.add_argument("out", type=Path)
    c.add_argument("videos", type=Path, nargs="+")
    c.add_argument("--columns", type=int, default=0, help="tiles per row (default: all in one row)")
    m = sub.add_parser("measure")
    m.add_argument("video", type=Path)
    m.add_argument("--max-faces", type=int, default=2)
    m.add_argument("--limit", type=int, default=None, help="frames at most")
    args = ap.parse_args()
    if args.cmd == "compose":
        compose(args.out, args.videos, args.columns or len(args.videos))
    else:
        print(json.dumps(measure(args.video, args.max_faces, args.limit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
