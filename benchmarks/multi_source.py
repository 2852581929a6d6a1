"""Several sources on one device: how many 640x480 30 fps sources one machine sustains with no drops, and
the CPU each added source costs.

Each source is a `mestream synth` video made from a real CASME II face (640x480 MJPG, 30 fps, planted
expressions, its own seed, so no two sources are one file), read paced at 30 fps as a camera would give it.
For 1..N sources, one `mestream run` with a --source per video and a --record; from its me.status metrics:

- sustained fps per source and CPU (all processes, cores busy) over the steady part of the run: from the
  first status where every source is past 3 s to the last one where every source still runs;
- drops and lost frames per source (the final status), and offset -> result p95 per source.

    python benchmarks/multi_source.py --max-sources 4 --seconds 20
    python benchmarks/multi_source.py --counts 1,2,4,6,8 --seconds 20 --work /tmp/ms   # reuses the videos there

Sources x faces (`--faces 1,2`): each source is then 1280x480, two of those videos side by side (two faces,
`[stages.track] max_faces = 2`) or one beside a black half (one face, same frame size and codec, so the
difference is what the second face costs, not the bigger frame); 640x480 rows stay as above:

    python benchmarks/multi_source.py --counts 1,2,4 --faces 1,2 --seconds 20 --work /tmp/ms

A source count is sustained when every source ran at >= 29 fps with 0 drops and 0 lost frames.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from still_faces import STILL_SPANS  # noqa: E402  synth refuses the moving parts of a source face

FACE = "casme2_sub01_EP02_01f.avi"  # 640x480 MJPG: the synth videos keep its size


def make_sources(work: Path, n: int, seconds: float) -> list[Path]:
    assets = Path(os.environ.get("MESTREAM_ASSETS", ""))
    face = assets / "videos" / FACE
    if not face.is_file():
        sys.exit(f"{face}: not found; set MESTREAM_ASSETS to the assets folder")
    videos = []
    for k in range(n):
        out = work / f"src{k}_{seconds:g}s.avi"
        if not out.is_file():
            subprocess.run([sys.executable, "-m", "edge.cli", "synth", "--face", str(face), "--out", str(out),
                            "--truth", str(out.with_suffix(".csv")), "--fps", "30", "--seconds", str(seconds),
                            "--seed", str(100 + k), "--no-progress", "--source-frames", STILL_SPANS[FACE]],
                           check=True, capture_output=True)
        videos.append(out)
    return videos


def side_by_side(out: Path, left: Path, right: Path | None) -> Path:
    """`left` | `right` (or | black) as one MJPG video of twice the width, as a wide camera would give it."""
    import cv2
    import numpy as np

    if out.is_file():
        return out
    caps = [cv2.VideoCapture(str(v)) for v in (left, right) if v is not None]
    w, h = int(caps[0].get(cv2.CAP_PROP_FRAME_WIDTH)), int(caps[0].get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), caps[0].get(cv2.CAP_PROP_FPS) or 30.0, (2 * w, h))
    while True:
        frames = [c.read() for c in caps]
        if not all(ok for ok, _ in frames):
            break
        canvas = np.zeros((h, 2 * w, 3), np.uint8)
        for i, (_, frame) in enumerate(frames):
            canvas[:, i * w : (i + 1) * w] = frame[:h, :w]
        writer.write(canvas)
    writer.release()
    for c in caps:
        c.release()
    return out


def wide_sources(work: Path, videos: list[Path], faces: int) -> list[Path]:
    """One 1280x480 video per source: videos k and k+1 side by side (faces=2), or video k beside black (faces=1)."""
    n = len(videos)
    return [side_by_side(work / f"wide{faces}_{k}.avi", v, videos[(k + 1) % n] if faces == 2 else None) for k, v in enumerate(videos)]


def topology_with_faces(work: Path, faces: int) -> Path:
    """The packaged topology with [stages.track] max_faces = faces."""
    text = (Path(__file__).resolve().parents[1] / "edge" / "topology.toml").read_text()
    if "\n# [stages.track]\n# max_faces = 1" not in text:
        sys.exit("edge/topology.toml no longer has the commented [stages.track] max_faces line this script edits")
    out = work / f"topology_faces{faces}.toml"
    out.write_text(text.replace("\n# [stages.track]\n# max_faces = 1", f"\n[stages.track]\nmax_faces = {faces}"))
    return out


def run_sources(videos: list[Path], work: Path, port: int, timeout_s: float, topology: Path | None = None) -> dict:
    record = work / f"run_{len(videos)}{'_' + topology.stem if topology else ''}.jsonl"
    cmd = [sys.executable, "-m", "edge.cli", "-q", "run", "--record", str(record), "--publish", f"tcp://127.0.0.1:{port}"]
    if topology is not None:
        cmd += ["--topology", str(topology)]
    for k, v in enumerate(videos):
        cmd += ["--source", f"s{k}={v}"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"mestream run with {len(videos)} sources failed ({proc.returncode}): {proc.stderr[-1500:]}")
    messages = [json.loads(x) for x in record.read_text().splitlines()]
    metrics = [m for m in messages if m.get("event") == "metrics"]
    # faces that gave events, (source, face_id): shows the second face of a two-face source was tracked
    faces = {(m.get("source"), m.get("face_id")) for m in messages if m.get("kind") is not None and "face_id" in m}
    return dict(summarise(metrics, wall), faces_with_events=len(faces))


def summarise(metrics: list[dict], wall: float) -> dict:
    def cpu(m):
        return sum(p.get("cpu_s") or 0.0 for p in m["processes"].values())

    steady = [m for m in metrics if not m.get("final") and all(s["frame"] >= 90 for s in m["sources"].values())]
    running = [m for m in steady if all(s["state"] == "running" for s in m["sources"].values())]
    first, last = running[0], running[-1]
    span = (last["t_ns"] - first["t_ns"]) / 1e9
    final = metrics[-1]
    return {
        "sources": len(final["sources"]),
        "span_s": round(span, 1),
        "fps": {n: round((last["sources"][n]["frame"] - first["sources"][n]["frame"]) / span, 1) for n in final["sources"]},
        "cores": round((cpu(last) - cpu(first)) / span, 2),
        "drops": {n: s["drops"] for n, s in final["sources"].items()},
        "lost": {n: s["lost"] for n, s in final["sources"].items()},
        "p95_ms": {n: (s["result_ms"] or {}).get("p95") for n, s in final["sources"].items()},
        "restarts": sum(p.get("restarts") or 0 for p in final["processes"].values()),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-sources", type=int, default=4)
    ap.add_argument("--counts", default="", help="source counts to run, e.g. 1,2,4,8 (default: 1..max-sources)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each source video (default 20)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the videos and records (default: a new temporary one)")
    ap.add_argument("--port", type=int, default=5591)
    ap.add_argument("--faces", default="", help="faces per source to run, e.g. 1,2: 1280x480 sources (default: 640x480, one face)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="multi_source-"))
    work.mkdir(parents=True, exist_ok=True)
    counts = [int(c) for c in args.counts.split(",")] if args.counts else list(range(1, args.max_sources + 1))
    videos = make_sources(work, max(max(counts), 2), args.seconds)
    if args.faces:
        faces_list = [int(f) for f in args.faces.split(",")]
        wide = {f: wide_sources(work, videos[: max(max(counts), 2)], f) for f in faces_list}
        topology = {f: topology_with_faces(work, f) for f in faces_list}
        rows: dict[int, list[dict]] = {f: [] for f in faces_list}
        for n in counts:  # each count with every face number in turn: a machine shared with other jobs loads them alike
            for f in faces_list:
                r = dict(run_sources(wide[f][:n], work, args.port, args.seconds * 3 + 120, topology[f]), faces=f, load=os.getloadavg()[0])
                rows[f].append(r)
                print(json.dumps(r), flush=True)
        for f in faces_list:
            print_table(rows[f], f"1280x480, {f} face(s) per source")
        return
    rows = []
    for n in counts:
        r = run_sources(videos[:n], work, args.port, timeout_s=args.seconds * 3 + 120)
        rows.append(r)
        print(json.dumps(r), flush=True)
    print_table(rows, "640x480, one face per source")


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}\n\n| sources | fps per source (min) | cores busy | + per added source (from the row above) | drops | lost | p95 offset->result ms (max) | restarts | sustained |")
    print("|---|---|---|---|---|---|---|---|---|")
    prev = None
    for r in rows:
        ok = min(r["fps"].values()) >= 29 and not sum(r["drops"].values()) and not sum(r["lost"].values())
        p95 = [v for v in r["p95_ms"].values() if v is not None]
        added = f"{(r['cores'] - prev[1]) / (r['sources'] - prev[0]):+.2f}" if prev is not None else "-"
        p95_text = f"{max(p95):.0f}" if p95 else "-"
        print(f"| {r['sources']} | {min(r['fps'].values()):.1f} | {r['cores']:.2f} | {added} | {sum(r['drops'].values())} | "
              f"{sum(r['lost'].values())} | {p95_text} | {r['restarts']} | {'yes' if ok else 'no'} |")
        prev = (r["sources"], r["cores"])


if __name__ == "__main__":
    main()
