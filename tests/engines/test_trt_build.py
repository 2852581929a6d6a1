import json

import numpy as np
import pytest
from tiny_artifacts import make_linear_onnx, tiny_artifact_meta

from engines.errors import MestreamError
from engines.trt_build import (
    DeviceInfo,
    engine_filename,
    ensure_engine,
    load_calibration_set,
    mismatch,
    read_sidecar,
    resolve_plan,
    sidecar_path,
    timing_cache_path,
)

ORIN = DeviceInfo("Orin", (8, 7), "10.3.0")
H100 = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), "10.13.0")
H100_OLD_TRT = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), "10.3.0")


class FakeBuilder:
    """Stands in for TensorRT: records each build and returns bytes naming what it was built for."""

    def __init__(self, device: DeviceInfo):
        self.device = device
        self.calls = []

    def __call__(self, onnx_path, meta, precision, timing_cache, calib_dir, calib_cache):
        self.calls.append((onnx_path, meta.model_id, precision, timing_cache))
        timing_cache.write_bytes(b"timing")
        return f"plan:{meta.model_id[:8]}:{self.device.slug}:{precision}".encode()


@pytest.fixture
def artifact(tmp_path):
    return make_linear_onnx(tmp_path / "tiny.onnx", tiny_artifact_meta("ab" * 32))


def test_the_engine_name_carries_model_hash_tensorrt_gpu_and_precision():
    name = engine_filename(tiny_artifact_meta("ab" * 32), H100, "fp16")
    assert name == "tiny-abababababababab-trt10.13.0-nvidia-h100-80gb-hbm3-sm90-fp16.plan"
    assert engine_filename(tiny_artifact_meta("ab" * 32), ORIN, "int8") == "tiny-abababababababab-trt10.3.0-orin-sm87-int8.plan"


def test_the_timing_cache_is_one_file_per_device_and_tensorrt(tmp_path):
    assert timing_cache_path(tmp_path, ORIN).name == "timing-trt10.3.0-orin-sm87.cache"
    assert timing_cache_path(tmp_path, H100) != timing_cache_path(tmp_path, H100_OLD_TRT)


def test_an_unknown_precision_is_refused():
    with pytest.raises(MestreamError, match="unknown precision 'fp8'"):
        engine_filename(tiny_artifact_meta(), H100, "fp8")


def test_a_first_build_writes_plan_sidecar_and_timing_cache(tmp_path, artifact):
    build = FakeBuilder(H100)
    plan = ensure_engine(artifact, precision="fp16", cache_dir=tmp_path / "cache", device=H100, build=build)
    assert plan.read_bytes() == b"plan:abababab:nvidia-h100-80gb-hbm3-sm90:fp16"
    assert len(build.calls) == 1 and build.calls[0][3] == timing_cache_path(tmp_path / "cache", H100)
    record = read_sidecar(plan)
    assert record["artifact"] == tiny_artifact_meta("ab" * 32).to_json()  # metadata round trip
    assert record["device"] == H100.to_json() and record["precision"] == "fp16"
    assert record["source"] == str(artifact.resolve()) and len(record["source_sha256"]) == 64
    assert record["shapes"] == {"flow": [1, 3, 28, 28]}
    # the plan holds only what the builder produced: no foreign header bytes
    assert not plan.read_bytes().startswith(b"{")


def test_a_matching_cached_engine_is_reused_without_building(tmp_path, artifact):
    build = FakeBuilder(H100)
    first = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    again = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    assert first == again and len(build.calls) == 1


def test_force_rebuilds_even_when_cached(tmp_path, artifact):
    build = FakeBuilder(H100)
    ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build, force=True)
    assert len(build.calls) == 2


def test_a_new_model_gets_its_own_engine(tmp_path):
    build = FakeBuilder(H100)
    a = ensure_engine(make_linear_onnx(tmp_path / "a.onnx", tiny_artifact_meta("aa" * 32)), cache_dir=tmp_path / "c", device=H100, build=build)
    b = ensure_engine(make_linear_onnx(tmp_path / "b.onnx", tiny_artifact_meta("bb" * 32)), cache_dir=tmp_path / "c", device=H100, build=build)
    assert a != b and len(build.calls) == 2


def test_a_plan_whose_sidecar_disagrees_is_rebuilt(tmp_path, artifact):
    build = FakeBuilder(H100)
    plan = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    record = read_sidecar(plan)
    record["device"]["trt_version"] = "10.0.1"  # e.g. copied in from a machine with another TensorRT
    sidecar_path(plan).write_text(json.dumps(record))
    ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    assert len(build.calls) == 2
    assert read_sidecar(plan)["device"]["trt_version"] == H100.trt_version


def test_a_plan_without_its_sidecar_is_rebuilt(tmp_path, artifact):
    build = FakeBuilder(H100)
    plan = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    sidecar_path(plan).unlink()
    ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=build)
    assert len(build.calls) == 2 and sidecar_path(plan).is_file()


def test_mismatch_names_what_differs():
    record = {"artifact": tiny_artifact_meta("ab" * 32).to_json(), "device": H100.to_json(), "precision": "fp16"}
    assert mismatch(record, H100, tiny_artifact_meta("ab" * 32), "fp16") is None
    assert "GPU nvidia-h100-80gb-hbm3-sm90 != orin-sm87" in mismatch(record, ORIN)
    assert "TensorRT 10.13.0 != 10.3.0" in mismatch(record, H100_OLD_TRT)
    assert "model abababababab != cdcdcdcdcdcd" in mismatch(record, H100, tiny_artifact_meta("cd" * 32))
    assert "precision fp16 != fp32" in mismatch(record, H100, None, "fp32")


def test_a_plan_built_for_another_device_is_never_loaded_but_rebuilt_from_its_source(tmp_path, artifact):
    h100_plan = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=FakeBuilder(H100))
    on_orin = FakeBuilder(ORIN)
    plan, record = resolve_plan(h100_plan, ORIN, build=on_orin)
    assert plan != h100_plan and "orin-sm87" in plan.name
    assert plan.read_bytes() == b"plan:abababab:orin-sm87:fp32"
    assert record["device"] == ORIN.to_json() and len(on_orin.calls) == 1


def test_a_foreign_plan_whose_source_is_gone_is_refused_with_the_fix(tmp_path, artifact):
    h100_plan = ensure_engine(artifact, cache_dir=tmp_path / "c", device=H100, build=FakeBuilder(H100))
    artifact.unlink()
    with pytest.raises(MestreamError, match="built for another device .*GPU .* rebuild it here with `mestream build-engine"):
        resolve_plan(h100_plan, ORIN, build=FakeBuilder(ORIN))


def test_a_plan_that_fits_is_used_as_is(tmp_path, artifact):
    h100_plan = ensure_engine(artifact, cache_dir=tmp_path, device=H100, build=FakeBuilder(H100))
    never = FakeBuilder(H100)
    assert resolve_plan(h100_plan, H100, build=never)[0] == h100_plan and never.calls == []


def test_a_missing_plan_or_sidecar_is_one_clear_line(tmp_path):
    with pytest.raises(MestreamError, match="does not exist"):
        resolve_plan(tmp_path / "none.plan", H100)
    (tmp_path / "lonely.plan").write_bytes(b"x")
    with pytest.raises(MestreamError, match="has no sidecar lonely.json"):
        resolve_plan(tmp_path / "lonely.plan", H100)


def test_calibration_sets_are_read_per_input_and_checked(tmp_path):
    meta = tiny_artifact_meta()
    np.save(tmp_path / "flow.npy", np.random.default_rng(0).random((16, 3, 28, 28), dtype=np.float32))
    arrays = load_calibration_set(tmp_path, meta, limit=8)
    assert arrays["flow"].shape == (8, 3, 28, 28)
    np.save(tmp_path / "flow.npy", np.zeros((4, 28, 28, 3), np.float32))
    with pytest.raises(MestreamError, match=r"expected float32 \(N, 3, 28, 28\), got float32 \[4, 28, 28, 3\]"):
        load_calibration_set(tmp_path, meta)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MestreamError, match="has no flow.npy"):
        load_calibration_set(tmp_path / "empty", meta)


def test_build_engine_refuses_int8_without_calibration_data(tmp_path, artifact, capsys):
    from edge.cli import main

    assert main(["build-engine", "--artifact", str(artifact), "--int8"]) == 2
    assert "--int8 needs --calib DIR" in capsys.readouterr().err
