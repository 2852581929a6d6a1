#!/usr/bin/env bash
# One GPU-machine run for engines/ (issue 5): the gpu/trt-marked engine tests with real pycuda.
# TensorRT cannot be installed on the lent GPU machine (no download there, and its wheels are far over
# the 64 MiB carry limit), so test_trt.py reports its skip reason and test_trt_runner_on_gpu.py checks
# the pycuda half of the runner (device buffers, page-locked copies, streams, primary context) for real.
#
# Needs .h3whl/ in the repo root (ignored by git): a cp312 pycuda wheel and pytools, platformdirs, mako,
# siphash24 wheels. Run: bash benchmarks/gpu_engines.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi -L || true
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .h3whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD"
"$PY" -c "import pycuda.driver as c; c.init(); d=c.Device(0); print('pycuda', d.name(), d.compute_capability())" || exit 1
"$PY" -c "import tensorrt" 2>/dev/null && echo "tensorrt present" || echo "tensorrt: not installable here"
"$PY" -m pytest -q -p no:cacheprovider -rs tests/engines/test_trt_runner_on_gpu.py tests/engines/test_trt.py \
    tests/engines/test_trt_runner_bookkeeping.py tests/engines/test_ort.py tests/engines/test_artifact.py
