"""TensorRT engines built on the target device from an artifact, and the cache that keeps them.

    plan = ensure_engine("model.onnx", precision="fp16")   # built once per model x TensorRT x GPU x precision

A plan only loads with the TensorRT version and the GPU that built it, so plans are never shipped: they
are built where they run and cached under a name that carries all of it,

    <family>-<model id[:16]>-trt<TensorRT version>-<gpu slug>-sm<major><minor>-<precision>.plan

next to a JSON sidecar (`.json`, same stem) holding the artifact metadata, the device and the source ONNX
(never bytes inside the plan, so trtexec and polygraphy still load it). A timing cache per TensorRT
version and device (`timing-trt<version>-<gpu slug>-sm<cc>.cache`) makes rebuilds after a model change fast.
Anything that does not match (model hash, TensorRT version, GPU, precision) is rebuilt, not refused.

TensorRT 10 API only: `create_network(0)` (explicit batch), OnnxParser errors listed one per line,
`set_memory_pool_limit`, one optimisation profile pinned to the artifact's static shapes,
`build_serialized_network`. INT8 uses an IInt8EntropyCalibrator2 (deprecated since TensorRT 10.1 in
favour of explicit Q/DQ, still supported through 10.x) over training inputs saved as `<input name>.npy`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.artifact import Artifact, read_artifact
from engines.errors import MestreamError
from engines.files import atomic_write, utc_stamp
from engines.optional import require

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
CACHE_ENV = "MESTREAM_ENGINE_CACHE"
SIDECAR_SCHEMA = "mestream.engine"
SIDECAR_VERSION = 1
WORKSPACE_BYTES = 1 << 30  # plenty for these small classifiers; TensorRT takes less when it can


def import_tensorrt():
    trt = require("tensorrt", "gpu")
    if int(trt.__version__.split(".")[0]) < 10:
        raise MestreamError(f"tensorrt {trt.__version__} is installed; mestream needs TensorRT 10: pip install 'tensorrt>=10,<11'")
    return trt


def import_cuda_driver():
    return require("pycuda.driver", "gpu", package="pycuda")


@dataclass(frozen=True)
class DeviceInfo:
    """What a plan is bound to: the GPU model, its compute capability and the TensorRT version."""

    gpu: str  # e.g. "NVIDIA H100 80GB HBM3", "Orin"
    compute_capability: tuple[int, int]
    trt_version: str

    @property
    def slug(self) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.gpu.lower()).strip("-") or "gpu"
        major, minor = self.compute_capability
        return f"{name}-sm{major}{minor}"

    def to_json(self) -> dict[str, Any]:
        return {"gpu": self.gpu, "compute_capability": list(self.compute_capability), "trt_version": self.trt_version}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceInfo:
        major, minor = data["compute_capability"]
        return cls(str(data["gpu"]), (int(major), int(minor)), str(data["trt_version"]))


def current_device(index: int = 0) -> DeviceInfo:
    """The GPU this process would build for (pycuda) and the TensorRT it would build with."""
    trt = import_tensorrt()
    cuda = import_cuda_driver()
    cuda.init()
    if cuda.Device.count() <= index:
        raise MestreamError(f"no CUDA device {index} (found {cuda.Device.count()}); run on a machine with an NVIDIA GPU or use the ONNX Runtime engine")
    device = cuda.Device(index)
    return DeviceInfo(device.name(), tuple(device.compute_capability()), trt.__version__)


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "mestream" / "engines"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise MestreamError(f"unknown precision {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    return precision


def engine_filename(meta: Artifact, device: DeviceInfo, precision: str) -> str:
    family = re.sub(r"[^A-Za-z0-9_.-]+", "-", meta.family)
    return f"{family}-{meta.model_id[:16]}-trt{device.trt_version}-{device.slug}-{check_precision(precision)}.plan"


def timing_cache_path(cache_dir: Path, device: DeviceInfo) -> Path:
    return Path(cache_dir) / f"timing-trt{device.trt_version}-{device.slug}.cache"


def sidecar_path(plan: Path) -> Path:
    return Path(plan).with_suffix(".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_record(meta: Artifact, device: DeviceInfo, precision: str, source: Path, build_seconds: float) -> dict[str, Any]:
    return {
        "schema": SIDECAR_SCHEMA,
        "v": SIDECAR_VERSION,
        "artifact": meta.to_json(),
        "source": str(Path(source).resolve()),
        "source_sha256": file_sha256(source),
        "device": device.to_json(),
        "precision": precision,
        "shapes": {spec.name: list(spec.shape) for spec in meta.inputs},
        "built": utc_stamp(),
        "build_seconds": round(build_seconds, 3),
    }


def read_sidecar(plan: Path) -> dict[str, Any]:
    path = sidecar_path(plan)
    if not path.is_file():
        raise MestreamError(f"engine {plan} has no sidecar {path.name}; rebuild it with `mestream build-engine --artifact A.onnx`")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MestreamError(f"engine sidecar {path} is unreadable ({exc}); delete it and rebuild with `mestream build-engine`") from None
    if not isinstance(record, dict) or record.get("schema") != SIDECAR_SCHEMA or record.get("v") != SIDECAR_VERSION:
        raise MestreamError(f"engine sidecar {path} is not a {SIDECAR_SCHEMA} v{SIDECAR_VERSION} record; rebuild with `mestream build-engine`")
    return record


def mismatch(record: dict[str, Any], device: DeviceInfo, meta: Artifact | None = None, precision: str | None = None) -> str | None:
    """Why a cached plan cannot serve this request (None when it can)."""
    built_for = DeviceInfo.from_json(record["device"])
    reasons = []
    if meta is not None and record["artifact"]["model"]["id"] != meta.model_id:
        reasons.append(f"model {record['artifact']['model']['id'][:12]} != {meta.short_id}")
    if built_for.trt_version != device.trt_version:
        reasons.append(f"TensorRT {built_for.trt_version} != {device.trt_version}")
    if built_for.gpu != device.gpu or built_for.compute_capability != device.compute_capability:
        reasons.append(f"GPU {built_for.slug} != {device.slug}")
    if precision is not None and record["precision"] != precision:
        reasons.append(f"precision {record['precision']} != {precision}")
    return "; ".join(reasons) or None


# ------------------------------------------------------------------------------------------ calibration


def load_calibration_set(calib_dir: Path | str, meta: Artifact, limit: int | None = None) -> dict[str, np.ndarray]:
    """`<input name>.npy` per artifact input, each float32 (N, *shape without batch), same N for all."""
    calib_dir = Path(calib_dir)
    if not calib_dir.is_dir():
        raise MestreamError(f"calibration folder {calib_dir} does not exist; write it with `mestream export --calib-out DIR`")
    arrays: dict[str, np.ndarray] = {}
    for spec in meta.inputs:
        path = calib_dir / f"{spec.name}.npy"
        if not path.is_file():
            raise MestreamError(f"calibration folder {calib_dir} has no {path.name}; expected one .npy per input ({', '.join(s.name + '.npy' for s in meta.inputs)})")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise MestreamError(f"calibration file {path} is not a readable .npy ({exc})") from None
        if tuple(array.shape[1:]) != tuple(spec.shape[1:]) or array.dtype != np.float32:
            raise MestreamError(
                f"calibration file {path}: expected float32 (N, {', '.join(map(str, spec.shape[1:]))}), "
                f"got {array.dtype} {list(array.shape)}"
            )
        arrays[spec.name] = array[:limit] if limit else array
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise MestreamError(f"calibration files in {calib_dir} hold different or zero sample counts {counts}; write them together")
    return arrays


def make_entropy_calibrator(arrays: dict[str, np.ndarray], cache_file: Path):
    """An IInt8EntropyCalibrator2 feeding one sample (batch 1, the artifact's static shape) per get_batch."""
    trt = import_tensorrt()
    cuda = import_cuda_driver()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._arrays = arrays
            self._count = len(next(iter(arrays.values())))
            self._next = 0
            self._device = {name: cuda.mem_alloc(a[0:1].nbytes) for name, a in arrays.items()}

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self._next >= self._count:
                return None  # calibration done
            for name in names:
                cuda.memcpy_htod(self._device[name], np.ascontiguousarray(self._arrays[name][self._next : self._next + 1]))
            self._next += 1
            return [int(self._device[name]) for name in names]

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache):
            atomic_write(cache_file, bytes(cache))

    return EntropyCalibrator()


# ------------------------------------------------------------------------------------------ building


def build_plan(
    onnx_path: Path,
    meta: Artifact,
    precision: str,
    timing_cache: Path,
    calib_dir: Path | None = None,
    calib_cache: Path | None = None,
) -> bytes:
    """Parse the ONNX file and build a serialized plan with the TensorRT 10 builder."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for error in errors:
            log.error("ONNX parser: %s", error)
        raise MestreamError(
            f"TensorRT cannot parse {onnx_path}: {len(errors)} error(s), first: {errors[0] if errors else 'unknown'}; "
            "re-export with `mestream export` (it checks the operator allow-list)"
        )
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        log.info("input  %s %s %s", tensor.name, tuple(tensor.shape), tensor.dtype)
    for i in range(network.num_outputs):
        tensor = network.get_output(i)
        log.info("output %s %s %s", tensor.name, tuple(tensor.shape), tensor.dtype)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    # One profile pinned to the artifact's static shapes: min = opt = max, so the plan is exactly what runs.
    profile = builder.create_optimization_profile()
    for spec in meta.inputs:
        profile.set_shape(spec.name, spec.shape, spec.shape, spec.shape)
    config.add_optimization_profile(profile)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        if calib_dir is None:
            raise MestreamError("--int8 needs --calib DIR (one <input>.npy of training inputs per artifact input)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take fall back to FP16, not FP32
        config.int8_calibrator = make_entropy_calibrator(load_calibration_set(calib_dir, meta), calib_cache or timing_cache.with_suffix(".calib"))
        config.set_calibration_profile(profile)

    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise MestreamError(f"TensorRT failed to build an engine from {onnx_path} at {precision}; run with -vv for the builder log")
    atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


Builder = Callable[..., bytes]


def ensure_engine(
    artifact_path: Path | str,
    *,
    precision: str = "fp32",
    cache_dir: Path | str | None = None,
    calib_dir: Path | str | None = None,
    device: DeviceInfo | None = None,
    build: Builder = build_plan,
    force: bool = False,
) -> Path:
    """The cached plan for this artifact on this device and precision, built (or rebuilt) when needed.

    `device` and `build` are injectable so the cache logic is testable without a GPU.
    """
    artifact_path = Path(artifact_path)
    check_precision(precision)
    meta = read_artifact(artifact_path)
    device = device or current_device()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    plan = cache_dir / engine_filename(meta, device, precision)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if plan.is_file() and not force:
        try:
            reason = mismatch(read_sidecar(plan), device, meta, precision)
        except (MestreamError, KeyError, TypeError, ValueError) as exc:
            reason = f"unreadable sidecar ({exc})"
        if reason is None:
            log.info("engine cache hit: %s", plan)
            return plan
        log.warning("rebuilding %s: %s", plan.name, reason)
    log.info("building %s engine for %s on %s (TensorRT %s)", precision, meta.family, device.gpu, device.trt_version)
    started = time.perf_counter()
    data = build(
        artifact_path,
        meta,
        precision,
        timing_cache_path(cache_dir, device),
        Path(calib_dir) if calib_dir is not None else None,
        cache_dir / f"{meta.family}-{meta.model_id[:16]}-int8.calib",
    )
    seconds = time.perf_counter() - started
    # plan first, sidecar last: a crash in between leaves a plan without sidecar, which is rebuilt
    atomic_write(plan, data)
    atomic_write(sidecar_path(plan), json.dumps(sidecar_record(meta, device, precision, artifact_path, seconds), indent=2).encode())
    log.info("built %s in %.1f s", plan, seconds)
    return plan


def resolve_plan(plan: Path | str, device: DeviceInfo, *, cache_dir: Path | str | None = None, build: Builder = build_plan) -> tuple[Path, dict[str, Any]]:
    """A plan that fits `device`: `plan` itself, or one rebuilt from the ONNX its sidecar names.

    A plan built for another GPU or TensorRT is never loaded (deserialising it fails or, worse, runs
    wrong); it is rebuilt from its source artifact, or refused with the fix when that file is gone.
    """
    plan = Path(plan)
    if not plan.is_file():
        raise MestreamError(f"engine {plan} does not exist; build it with `mestream build-engine --artifact A.onnx`")
    record = read_sidecar(plan)
    reason = mismatch(record, device)
    if reason is None:
        return plan, record
    source = Path(record.get("source", ""))
    if not source.is_file():
        raise MestreamError(
            f"engine {plan.name} was built for another device ({reason}) and its source {source} is gone; "
            "rebuild it here with `mestream build-engine --artifact A.onnx`"
        )
    log.warning("engine %s does not fit this device (%s): rebuilding from %s", plan.name, reason, source)
    rebuilt = ensure_engine(source, precision=record["precision"], cache_dir=cache_dir or plan.parent, device=device, build=build)
    return rebuilt, read_sidecar(rebuilt)
