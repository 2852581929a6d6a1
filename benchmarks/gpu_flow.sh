#!/usr/bin/env bash
# One GPU-machine run for the CUDA TV-L1 (issue 5): build pycuda, run the gpu-marked flow tests (parity with
# the CPU reference on real face crops, Middlebury), then `bench-flow` (Middlebury EPE of ours/OpenCV/CUDA,
# 128x128 batched pairs/s with CUDA events and the ratio to OpenCV's CPU DualTVL1 on the same pairs).
#
# Needs, in the repo root (both ignored by git, never committed; see .git/info/exclude):
#   .whl/        pycuda sdist (or a pycuda wheel built by an earlier run), pytools, platformdirs, mako,
#                siphash24 and opencv-contrib-python-headless wheels for cp312 (the device image has no pycuda
#                and no cv2.optflow and cannot download)
#   .devassets_flow/  middlebury.npz (grey frames + ground truth of the four Middlebury sequences, made from
#                $MESTREAM_ASSETS/flow), videos/casme2_sub01_EP02_01f.avi and images/pyfeat_single_face.jpg
#                copied from $MESTREAM_ASSETS: ../shared does not travel (the 64 MiB limit leaves out the rest)
# Run:   bash benchmarks/gpu_flow.sh        (results and logs go to $OUT, default out/gpu_flow)
set -uo pipefail
OUT=${OUT:-out/gpu_flow}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
SITE=/tmp/site
t0=$(date +%s)

nvidia-smi -L || true
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD"

if ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
  # build pycuda from its sdist against this machine's CUDA; keep the wheel for the next run ($OUT)
  CUDA_ROOT=${CUDA_ROOT:-$(dirname "$(dirname "$(command -v nvcc)")")}
  mkdir -p /tmp/cudalib
  lib=$(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF; exit}')
  [ -z "$lib" ] && lib=$(find / -name 'libcuda.so.1' -not -path '*/proc/*' 2>/dev/null | head -1)
  ln -sf "$lib" /tmp/cudalib/libcuda.so
  rm -rf /tmp/pycuda_src && mkdir -p /tmp/pycuda_src /tmp/pycuda_dist
  tar xzf .whl/pycuda-*.tar.gz -C /tmp/pycuda_src
  ( cd /tmp/pycuda_src/pycuda-* &&
    "$PY" configure.py --cuda-root="$CUDA_ROOT" --cudadrv-lib-dir=/tmp/cudalib,"$CUDA_ROOT/lib64" \
        --cudart-lib-dir="$CUDA_ROOT/lib64" --no-cuda-enable-curand > /tmp/pycuda_configure.log 2>&1 &&
    "$PY" setup.py -q build_ext -j 16 bdist_wheel -d /tmp/pycuda_dist > /tmp/pycuda_build.log 2>&1 ) \
    || { tail -40 /tmp/pycuda_build.log /tmp/pycuda_configure.log; exit 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" /tmp/pycuda_dist/*.whl || exit 1
  cp /tmp/pycuda_dist/*.whl "$OUT/"
  echo "pycuda built in $(( $(date +%s) - t0 )) s"
fi
"$PY" -c "import pycuda.driver as c, cv2, numpy; c.init(); print('pycuda', c.get_version(), c.Device(0).name(), 'cv2', cv2.__version__, hasattr(cv2, 'optflow'), 'numpy', numpy.__version__)"

# the test material, unpacked in its $MESTREAM_ASSETS layout
ASSETS=/tmp/assets
"$PY" - <<'PYEOF' || exit 1
import numpy as np, cv2, pathlib, shutil
root = pathlib.Path("/tmp/assets")
d = np.load(".devassets_flow/middlebury.npz")
for seq in ("RubberWhale", "Venus", "Dimetrodon", "Hydrangea"):
    folder = root / "flow" / seq
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "frame10.png"), d[seq + "_frame10"])
    cv2.imwrite(str(folder / "frame11.png"), d[seq + "_frame11"])
    gt = d[seq + "_flow10"]
    (folder / "flow10.flo").write_bytes(b"PIEH" + np.array(gt.shape[1::-1], np.int32).tobytes() + gt.astype(np.float32).tobytes())
(root / "videos").mkdir(exist_ok=True)
for v in pathlib.Path(".devassets_flow").glob("*.avi"):
    shutil.copy(v, root / "videos" / v.name)
(root / "images").mkdir(exist_ok=True)
for v in pathlib.Path(".devassets_flow").glob("*.jpg"):
    shutil.copy(v, root / "images" / v.name)
PYEOF
export MESTREAM_ASSETS=$ASSETS

"$PY" -m pytest -q -p no:cacheprovider -rs tests/edge/test_flow_cuda.py tests/edge/test_flow.py 2>&1 | tee "$OUT/pytest.log"
"$PY" -c "import argparse, sys; from edge.commands import bench_flow as b; p = argparse.ArgumentParser(); b.add_arguments(p); sys.exit(b.run(p.parse_args(sys.argv[1:])))" \
  --cuda yes --batch "${BATCH:-16,64,256,1024}" --json "$OUT/bench_flow.json" 2>&1 | tee "$OUT/bench_flow.log"
echo "total $(( $(date +%s) - t0 )) s"
