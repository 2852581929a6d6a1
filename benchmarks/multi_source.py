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
                            "--seed", str(100 + k), "--no-progress"], check=True, capture_output=True)
        videos.append(out)
    return videos


def run_sources(videos: list[Path], work: Path, port: int, timeout_s: float) -> dict:
    record = work / f"run_{len(videos)}.jsonl"
    cmd = [sys.executable, "-m", "edge.cli", "-q", "run", "--record", str(record), "--publish", f"tcp://127.0.0.1:{port}"]
    for k, v in enumerate(videos):
        cmd += ["--source", f"s{k}={v}"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"mestream run with {len(videos)} sources failed ({proc.returncode}): {proc.stderr[-1500:]}")
    metrics = [m for m in (json.loads(x) for x in record.read_text().splitlines()) if m.get("event") == "metrics"]
    return summarise(metrics, wall)


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
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="multi_source-"))
    work.mkdir(parents=True, exist_ok=True)
    counts = [int(c) for c in args.counts.split(",")] if args.counts else list(range(1, args.max_sources + 1))
    videos = make_sources(work, max(counts), args.seconds)
    rows = []
    for n in counts:
        r = run_sources(videos[:n], work, args.port, timeout_s=args.seconds * 3 + 120)
        rows.append(r)
        print(json.dumps(r), flush=True)
    print("\n| sources | fps per source (min) | cores busy | + per added source (from the row above) | drops | lost | p95 offset->result ms (max) | restarts | sustained |")
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
