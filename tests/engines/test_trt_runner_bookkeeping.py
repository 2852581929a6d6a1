"""engines/trt.py run against the fake TensorRT/pycuda of fake_gpu.py: the runner's own logic, on a CPU."""

import sys
import types

import numpy as np
import pytest
from fake_gpu import MEMORY, STATS, DeviceAllocation, make_driver, make_tensorrt, plan_bytes
from tiny_artifacts import linear_weights, make_linear_onnx, reference_outputs, tiny_artifact_meta

from engines.errors import MestreamError
from engines.trt_build import DeviceInfo, ensure_engine, read_sidecar, resolve_plan

FAKE = DeviceInfo("Fake GPU", (8, 7), "10.0.0")


@pytest.fixture
def fake_gpu(monkeypatch):
    driver = make_driver()
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt())
    MEMORY.clear()
    STATS.update(allocations=0, executions=0, pushes=0, pops=0)
    return driver


def _plan(tmp_path, device=FAKE):
    artifact = make_linear_onnx(tmp_path / "tiny.onnx", tiny_artifact_meta("ab" * 32))
    weight, bias = linear_weights()
    return ensure_engine(artifact, cache_dir=tmp_path / "cache", device=device, build=lambda *a: plan_bytes(weight, bias))


def test_the_runner_matches_the_reference_and_allocates_buffers_once(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    plan = _plan(tmp_path)
    rng = np.random.default_rng(0)
    with TrtEngine(plan) as engine:
        assert engine.meta.to_json() == tiny_artifact_meta("ab" * 32).to_json()
        allocated = STATS["allocations"]
        assert allocated == 3  # one device buffer per I/O tensor
        for _ in range(5):
            flow = rng.random((1, 3, 28, 28), dtype=np.float32)
            out = engine.infer({"flow": flow})
            logits, probs = reference_outputs(flow)
            np.testing.assert_allclose(out["logits"], logits, atol=1e-4)
            np.testing.assert_allclose(out["probs"], probs, atol=1e-5)
        assert STATS["allocations"] == allocated and STATS["executions"] == 5
    assert MEMORY == {}  # close() freed every buffer
    assert STATS["pushes"] == STATS["pops"] == 1  # primary context pushed once, popped on close


def test_infer_device_reads_the_given_pointer_then_restores_its_own_buffers(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    a = np.random.default_rng(1).random((1, 3, 28, 28), dtype=np.float32)
    b = np.random.default_rng(2).random((1, 3, 28, 28), dtype=np.float32)
    with TrtEngine(_plan(tmp_path)) as engine:
        producer = DeviceAllocation(a.nbytes)  # e.g. the flow kernels' output buffer
        fake_gpu.memcpy_htod(producer, a)
        np.testing.assert_allclose(engine.infer_device({"flow": int(producer)})["probs"], reference_outputs(a)[1], atol=1e-5)
        # a host infer afterwards uses the engine's own input buffer again, not the producer's
        np.testing.assert_allclose(engine.infer({"flow": b})["probs"], reference_outputs(b)[1], atol=1e-5)
        assert "probs" in engine.device_outputs()
        with pytest.raises(MestreamError, match="expected device pointers for flow, got apex"):
            engine.infer_device({"apex": int(producer)})


def test_the_runner_refuses_mismatched_host_inputs(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    with TrtEngine(_plan(tmp_path)) as engine, pytest.raises(MestreamError, match=r"expected shape \[1, 3, 28, 28\], got \[3, 28, 28\]"):
        engine.infer({"flow": np.zeros((3, 28, 28), np.float32)})


def test_a_plan_for_another_gpu_is_rebuilt_before_loading(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    foreign = _plan(tmp_path, device=DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), "10.0.0"))
    weight, bias = linear_weights()
    calls = []

    def fake_build(*args):
        calls.append(args[2])
        return plan_bytes(weight, bias)

    path, record = resolve_plan(foreign, FAKE, build=fake_build)
    assert calls == ["fp32"] and "fake-gpu-sm87" in path.name and record["device"] == FAKE.to_json()
    with TrtEngine(path) as engine:
        assert engine.path == path and read_sidecar(path)["device"]["gpu"] == "Fake GPU"


def test_a_plan_tensorrt_cannot_deserialise_is_refused_with_the_fix(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    plan = _plan(tmp_path)
    plan.write_bytes(b"corrupted")
    with pytest.raises(MestreamError, match="could not deserialise .* rebuild"):
        TrtEngine(plan)
    assert STATS["pushes"] == STATS["pops"]  # the context is released on a failed open too


def test_a_closed_runner_says_so(tmp_path, fake_gpu):
    from engines.trt import TrtEngine

    engine = TrtEngine(_plan(tmp_path))
    engine.close()
    engine.close()  # twice is harmless
    with pytest.raises(MestreamError, match="is closed"):
        engine.infer({"flow": np.zeros((1, 3, 28, 28), np.float32)})
