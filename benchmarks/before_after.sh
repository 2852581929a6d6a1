#!/bin/bash
# Behaviour before/after a change, side by side in one run: mestream bench twice each (interleaved), the synthetic
# spotting benchmark and the real-clip one (evaluation subjects, still, 30 fps). Usage: before_after.sh BEFORE_TREE AFTER_TREE
# (two git worktrees, e.g. git worktree add --detach /tmp/b REV). Needs /tmp/s200.avi (README "What to expect") and the
# /tmp/tune2 and /tmp/real caches of spotting_tune.py and spotting_real.py (made on first use).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
export MESTREAM_ASSETS="${MESTREAM_ASSETS:-$ROOT/../shared/assets}"
for round in 1 2; do
  for tree in "$1" "$2"; do
    name=$(basename $tree)
    (cd $tree && PYTHONPATH=$tree timeout 300 $PY -m edge.cli bench --source /tmp/s200.avi --seconds 20 --json ${OUT:-/tmp}/bench_${name}_$round.json 2>&1 | grep -v "W0000\|I0000" | tail -3)
  done
done
for tree in "$1" "$2"; do
  name=$(basename $tree)
  (cd $tree && PYTHONPATH=$tree timeout 900 $PY benchmarks/spotting_tune.py --work /tmp/tune2 --variant default --json ${OUT:-/tmp}/tune_${name}.json 2>&1 | grep -v "W0000\|I0000" | tail -3)
  (cd $tree && PYTHONPATH=$tree timeout 1800 $PY benchmarks/spotting_real.py --work /tmp/real --set eval --protocol still --fps 30 --jobs 2 --variant default --json ${OUT:-/tmp}/real_${name}.json 2>&1 | grep -v "W0000\|I0000" | tail -2)
done
