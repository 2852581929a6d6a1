"""The CUDA TV-L1 (edge/cuda/tvl1.cu via pycuda): it compiles without spills and matches the CPU reference.

The compile test needs only nvcc; the others need pycuda and an NVIDIA GPU and are skipped elsewhere.
"""

import re
import shutil
import subprocess
from importlib import resources

import cv2
import numpy as np
import pytest
from cuda_here import cuda_or_skip

from edge.perception import flow
from edge.tools.bench_flow import face_pairs
from engines.errors import MestreamError

ARCHS = ("sm_87", "sm_80", "sm_90")  # Jetson Orin, Ampere desktop/A100, Hopper


def _cuda_or_skip():
    return cuda_or_skip("CUDA flow tests need it")


@pytest.fixture(scope="module")
def gpu():
    _cuda_or_skip()
    from edge.perception import flow_cuda

    context, stream = flow_cuda.open_default_context()
    yield flow_cuda, context, stream
    context.pop()
    context.detach()


def _face_pairs(assets):
    """(prev, next): stacked grey face crops 10 frames apart, three from each face video there is."""
    prevs, nexts = [], []
    for name in ("videos/casme2_sub01_EP02_01f.avi", "videos/evm_face.mp4"):
        if (assets / name).is_file():
            a, b = face_pairs(assets / name, 3, 10)
            prevs.append(a)
            nexts.append(b)
    if not prevs:
        pytest.skip("no face video under MESTREAM_ASSETS/videos")
    return np.concatenate(prevs), np.concatenate(nexts)


@pytest.mark.parametrize("arch", ARCHS)
def test_kernels_compile_for_orin_ampere_and_hopper_without_register_spills(arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH: cannot compile the CUDA kernels here")
    source = resources.files("edge").joinpath("cuda", "tvl1.cu")
    from edge.perception.flow_cuda import NVCC_OPTIONS

    proc = subprocess.run(
        [nvcc, "-cubin", f"-arch={arch}", "-Xptxas", "-v", *NVCC_OPTIONS, "-o", str(tmp_path / "k.cubin"), str(source)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", proc.stderr)
    assert len(spills) >= 13, proc.stderr  # one line per kernel
    assert all(s == ("0", "0") for s in spills), proc.stderr


def test_without_pycuda_the_gpu_flow_names_the_gpu_extra():
    try:
        import pycuda  # noqa: F401
    except ImportError:
        from edge.perception.flow_cuda import CudaTVL1

        with pytest.raises(MestreamError, match=r"\[gpu\]"):
            CudaTVL1(None, None, 1, 128, 128)
    else:
        pytest.skip("pycuda is installed here: the missing-extra message cannot be seen")


@pytest.mark.gpu
def test_gpu_flow_matches_the_cpu_reference_on_real_face_crops(assets, gpu):
    flow_cuda, context, stream = gpu
    prev, nxt = _face_pairs(assets)
    with flow_cuda.CudaTVL1(context, stream, batch=8, height=128, width=128) as tvl1:
        f_gpu, x_gpu = tvl1.compute(prev, nxt)
    for i in range(len(prev)):
        f_cpu = flow.tvl1_flow(prev[i], nxt[i])
        epe = np.sqrt(((f_gpu[i] - f_cpu) ** 2).sum(-1)).mean()
        assert epe <= 0.01, (i, epe)
        x_cpu = flow.flow_input(prev[i], nxt[i])
        # identical up to a rare one-level flip of the uint8 rounding
        assert np.abs(x_gpu[i] - x_cpu).max() <= 1 / 255 + 1e-6
        assert np.mean(x_gpu[i] != x_cpu) < 0.01


@pytest.mark.gpu
def test_gpu_middlebury_epe_equals_the_cpu_reference(assets, gpu):
    from edge.tools.bench_flow import average_epe, read_flo

    flow_cuda, context, stream = gpu
    folder = assets / "flow" / "RubberWhale"
    a = cv2.imread(str(folder / "frame10.png"), cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(str(folder / "frame11.png"), cv2.IMREAD_GRAYSCALE)
    truth = read_flo(folder / "flow10.flo")
    with flow_cuda.CudaTVL1(context, stream, batch=1, height=a.shape[0], width=a.shape[1]) as tvl1:
        f_gpu, _ = tvl1.compute(a[None], b[None])
    f_cpu = flow.tvl1_flow(a, b)
    assert average_epe(f_gpu[0], f_cpu) <= 0.01
    assert abs(average_epe(f_gpu[0], truth) - average_epe(f_cpu, truth)) < 0.002


@pytest.mark.gpu
def test_gpu_buffers_are_reused_and_exposed_as_device_pointers(assets, gpu):
    flow_cuda, context, stream = gpu
    prev, nxt = _face_pairs(assets)
    with flow_cuda.CudaTVL1(context, stream, batch=len(prev), height=128, width=128) as tvl1:
        assert tvl1.input_ptr != 0 and tvl1.flow_ptr != 0
        first = tvl1.compute(prev, nxt)
        again = tvl1.compute(prev, nxt)
        one = tvl1.compute(prev[:1], nxt[:1])
        assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
        assert np.array_equal(one[0][0], first[0][0])
        with pytest.raises(MestreamError, match="uint8"):
            tvl1.upload(prev.astype(np.float32), nxt)
    with pytest.raises(MestreamError, match="epsilon"):
        flow_cuda.CudaTVL1(context, stream, 1, 128, 128, flow.TVL1Params(epsilon=0.01))


def test_a_working_size_is_refused_on_the_gpu_naming_the_cpu_path():
    from edge.perception.flow_cuda import CudaTVL1

    with pytest.raises(MestreamError, match=r"work_size=64 is not supported on the GPU.*device = \"cpu\""):
        CudaTVL1(None, None, 1, 128, 128, flow.TVL1Params(work_size=64))
