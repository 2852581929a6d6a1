"""TensorRT against ONNX Runtime on the same artifact. Needs TensorRT 10, pycuda and an NVIDIA GPU."""

import importlib.util

import numpy as np
import pytest
from cuda_here import cuda_unusable_reason
from tiny_artifacts import make_linear_onnx, tiny_artifact_meta

from engines.errors import MestreamError


def _skip_reason() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT 10 is not installed (pip install 'mestream[gpu]' on a machine with an NVIDIA GPU)"
    return cuda_unusable_reason()


REASON = _skip_reason()
pytestmark = [pytest.mark.trt, pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


@pytest.fixture
def artifact(tmp_path):
    return make_linear_onnx(tmp_path / "tiny.onnx", tiny_artifact_meta("ab" * 32))


@pytest.mark.parametrize("precision, atol", [("fp32", 1e-4), ("fp16", 2e-2)])
def test_tensorrt_matches_onnx_runtime(tmp_path, artifact, precision, atol):
    from engines.ort import OrtEngine
    from engines.trt import open_trt_engine

    rng = np.random.default_rng(3)
    with OrtEngine(artifact) as ort_engine, open_trt_engine(artifact, precision=precision, cache_dir=tmp_path / "cache") as trt_engine:
        assert trt_engine.meta.to_json() == ort_engine.meta.to_json()
        for _ in range(10):
            flow = rng.random((1, 3, 28, 28), dtype=np.float32)
            want, got = ort_engine.infer({"flow": flow}), trt_engine.infer({"flow": flow})
            np.testing.assert_allclose(got["logits"], want["logits"], atol=atol)
            np.testing.assert_allclose(got["probs"], want["probs"], atol=atol)


def test_infer_device_reads_inputs_straight_from_gpu_memory(tmp_path, artifact):
    import pycuda.driver as cuda

    from engines.trt import open_trt_engine

    flow = np.random.default_rng(4).random((1, 3, 28, 28), dtype=np.float32)
    with open_trt_engine(artifact, cache_dir=tmp_path / "cache") as engine:
        on_gpu = cuda.mem_alloc(flow.nbytes)
        cuda.memcpy_htod(on_gpu, flow)
        np.testing.assert_allclose(engine.infer_device({"flow": int(on_gpu)})["probs"], engine.infer({"flow": flow})["probs"], atol=1e-6)
        with pytest.raises(MestreamError, match="expected device pointers for flow"):
            engine.infer_device({"apex": int(on_gpu)})
        on_gpu.free()


def test_the_second_open_reuses_the_cached_plan(tmp_path, artifact):
    from engines.trt import open_trt_engine

    with open_trt_engine(artifact, cache_dir=tmp_path / "cache") as first:
        stamp = first.path.stat().st_mtime_ns
    with open_trt_engine(artifact, cache_dir=tmp_path / "cache") as second:
        assert second.path == first.path and second.path.stat().st_mtime_ns == stamp


def test_trt_refuses_mismatched_inputs_like_ort(tmp_path, artifact):
    from engines.trt import open_trt_engine

    with open_trt_engine(artifact, cache_dir=tmp_path / "cache") as engine:
        with pytest.raises(MestreamError, match="expected dtype float32, got float64"):
            engine.infer({"flow": np.zeros((1, 3, 28, 28), np.float64)})
