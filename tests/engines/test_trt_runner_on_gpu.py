"""engines/trt.py with REAL pycuda on a real GPU (device buffers, page-locked host buffers, streams,
primary context) and the fake TensorRT of fake_gpu.py computing through that GPU memory. It checks the
pycuda half of the runner where TensorRT itself cannot be installed; test_trt.py checks the whole."""

import sys

import numpy as np
import pytest
from cuda_here import cuda_unusable_reason
from fake_gpu import make_tensorrt, plan_bytes
from tiny_artifacts import linear_weights, make_linear_onnx, reference_outputs, tiny_artifact_meta

from engines.trt_build import ensure_engine

REASON = cuda_unusable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def _open_engine(tmp_path, monkeypatch):
    import pycuda.driver as cuda

    from engines.trt import TrtEngine
    from engines.trt_build import DeviceInfo

    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt(real_memory=True))
    device = cuda.Device(0)
    here = DeviceInfo(device.name(), tuple(device.compute_capability()), "10.0.0")
    weight, bias = linear_weights()
    artifact = make_linear_onnx(tmp_path / "tiny.onnx", tiny_artifact_meta("ab" * 32))
    plan = ensure_engine(artifact, cache_dir=tmp_path / "cache", device=here, build=lambda *a: plan_bytes(weight, bias))
    return TrtEngine(plan)


@pytest.fixture
def engine(tmp_path, monkeypatch):
    runner = _open_engine(tmp_path, monkeypatch)
    yield runner
    runner.close()


def test_host_inference_goes_through_real_device_buffers(engine):
    rng = np.random.default_rng(0)
    for _ in range(5):
        flow = rng.random((1, 3, 28, 28), dtype=np.float32)
        out = engine.infer({"flow": flow})
        np.testing.assert_allclose(out["probs"], reference_outputs(flow)[1], atol=1e-5)


def test_infer_device_takes_a_pointer_from_another_producer_on_the_same_context(engine):
    import pycuda.driver as cuda

    flow = np.random.default_rng(1).random((1, 3, 28, 28), dtype=np.float32)
    producer = cuda.mem_alloc(flow.nbytes)  # stands in for the flow kernels' output buffer
    stream = cuda.Stream()
    cuda.memcpy_htod_async(producer, flow, stream)
    out = engine.infer_device({"flow": int(producer)}, stream=stream)
    np.testing.assert_allclose(out["probs"], reference_outputs(flow)[1], atol=1e-5)
    producer.free()


def test_the_runner_pushes_the_primary_context_and_pops_it_on_close(tmp_path, monkeypatch):
    import pycuda.driver as cuda

    if cuda.Context.get_current() is not None:
        pytest.skip("a CUDA context is already current in this process, so the runner pushes none")
    runner = _open_engine(tmp_path, monkeypatch)
    assert cuda.Context.get_current() is not None
    runner.close()
    assert cuda.Context.get_current() is None
