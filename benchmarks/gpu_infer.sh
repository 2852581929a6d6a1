#!/usr/bin/env bash
# One GPU-machine run for the one GPU process (issue 5): the gpu/trt-marked infer tests with real pycuda, then
# the infer stage timed side by side on the same intervals: the CPU path (CPU TV-L1 + ONNX Runtime) against
# the GPU path (CUDA TV-L1 in the process's context, then TensorRT on the kernels' device memory where TensorRT
# is installed, else ONNX Runtime on one host copy of the 3x28x28 input). It prints ms per interval (p50/p95),
# the speed-up, the GPU flow time from CUDA events and the largest probability difference to the CPU path.
#
# Needs, in the repo root (ignored by git, never committed; see .git/info/exclude):
#   .h12whl/          cp312 wheels: pycuda (built on the device by benchmarks/gpu_flow.sh), pytools, platformdirs,
#                     mako, siphash24, pyzmq (the device image has numpy, onnxruntime and opencv but not these)
#   .devassets_flow/  optional: casme2_sub01_EP02_01f.avi, for real face crops next to the synthetic ones
# Device call (one run, about 2 minutes): carry [".h12whl", ".devassets_flow"], command `bash benchmarks/gpu_infer.sh`
# Here (no GPU): `PY=.venv/bin/python bash benchmarks/gpu_infer.sh` times the CPU path and says why the GPU is skipped.
set -uo pipefail
OUT=${OUT:-out/gpu_infer}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
N=${N:-40}
t0=$(date +%s)

nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none"
if [ -d .h12whl ] && command -v nvidia-smi >/dev/null && ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .h12whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -f .devassets_flow/casme2_sub01_EP02_01f.avi ] && [ -z "${MESTREAM_ASSETS:-}" ]; then
  mkdir -p /tmp/assets_infer/videos && cp .devassets_flow/casme2_sub01_EP02_01f.avi /tmp/assets_infer/videos/
  export MESTREAM_ASSETS=/tmp/assets_infer
fi

"$PY" -m pytest -q -p no:cacheprovider -rs tests/edge/test_classify_gpu.py tests/edge/test_gpu_select.py 2>&1 | tee "$OUT/pytest.log"

N=$N "$PY" - <<'PYEOF' 2>&1 | tee "$OUT/bench.log"
import json, os, sys, time
from pathlib import Path

import numpy as np

sys.path.insert(0, "tests/edge")
from test_classify_gpu import _crops, _textured_pair, _interval_of  # the tests' intervals: synthetic + real crops
from edge.gpu import choose_device, probe_gpu
from edge.stages.classify import Classify
from edge.stages.classify_gpu import ClassifyGpu
from engines import default_artifact_path

n = int(os.environ["N"])
assets = Path(os.environ["MESTREAM_ASSETS"]) if os.environ.get("MESTREAM_ASSETS") else None
base = _crops(assets)
messages = [base[i % len(base)] for i in range(n)]
artifact = default_artifact_path()
probe = probe_gpu()
print("probe:", probe)


def timed(stage, label):
    stage.open()
    try:
        for m in messages[:3]:
            stage.process(m)  # warm-up: first kernel launches, ORT/TensorRT lazy set-up
        took, events = [], []
        for m in messages:
            t = time.perf_counter()
            [event] = stage.process(m)
            took.append((time.perf_counter() - t) * 1000)
            events.append(event.header)
    finally:
        stage.close()
    took = np.array(took)
    row = {"path": label, "intervals": len(took), "ms_p50": float(np.median(took)), "ms_p95": float(np.percentile(took, 95)),
           "flow_ms_p50": float(np.median([e["latency_ms"]["flow"] for e in events])),
           "classify_ms_p50": float(np.median([e["latency_ms"]["classify"] for e in events]))}
    print(f"{label:34s} {row['ms_p50']:8.2f} ms p50 {row['ms_p95']:8.2f} ms p95  (flow {row['flow_ms_p50']:.2f} ms, classify {row['classify_ms_p50']:.2f} ms)")
    return row, events


results = {"device": probe.name or "cpu only", "intervals": n, "paths": []}
cpu_row, cpu_events = timed(Classify(artifact), "cpu: CPU TV-L1 + ONNX Runtime")
results["paths"].append(cpu_row)
if not probe.cuda:
    print(f"GPU path skipped: {probe.reason}")
else:
    paths = [("gpu: CUDA TV-L1 + ORT (host copy)", "ort")]
    if probe.tensorrt:
        paths.append(("gpu: CUDA TV-L1 + TensorRT (device ptr)", "trt"))
    else:
        print(f"TensorRT half skipped: {probe.reason}")
    for label, engine in paths:
        row, events = timed(ClassifyGpu(artifact, engine=engine), label)
        row["speedup_vs_cpu"] = cpu_row["ms_p50"] / row["ms_p50"]
        row["max_abs_prob_diff"] = max(abs(g["probabilities"][k] - c["probabilities"][k]) for g, c in zip(events, cpu_events) for k in c["probabilities"])
        row["label_agreement"] = float(np.mean([g["label"] == c["label"] for g, c in zip(events, cpu_events)]))
        print(f"{'':34s} speed-up x{row['speedup_vs_cpu']:.1f} vs cpu, max |dp| {row['max_abs_prob_diff']:.2e}, labels agree {row['label_agreement']:.0%}")
        results["paths"].append(row)
out = Path(os.environ.get("OUT", "out/gpu_infer")) / "gpu_infer.json"
out.write_text(json.dumps(results, indent=2))
print("wrote", out)
PYEOF
echo "total $(( $(date +%s) - t0 )) s"
