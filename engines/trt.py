"""TensorRT runner: the same `infer()` as the ONNX Runtime engine, plus `infer_device()` for GPU inputs.

    engine = open_trt_engine("model.onnx", precision="fp16")        # builds or reuses the cached plan
    out = engine.infer({"flow": flow})                               # host numpy in, host numpy out
    out = engine.infer_device({"flow": flow_gpu_ptr}, stream=s)      # device pointers from the flow kernels

TensorRT 10 only: tensors by name (`num_io_tensors`, `get_tensor_name`, `get_tensor_mode`),
`set_tensor_address` and `execute_async_v3` on the process's stream. Device buffers come from pycuda and
are allocated once, when the engine opens; outputs are copied back into page-locked host buffers.

CUDA context: the `infer` process owns one context and one stream (DESIGN.md section 3). The runner uses
the context current on the calling thread; when there is none it retains the device's primary context
(the same one the CUDA flow kernels, CuPy or torch use), pushes it, and pops it on close().
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from engines.artifact import Artifact, TensorInfo
from engines.base import check_inputs
from engines.errors import MestreamError
from engines.trt_build import (
    DeviceInfo,
    current_device,
    ensure_engine,
    import_cuda_driver,
    import_tensorrt,
    resolve_plan,
)

log = logging.getLogger(__name__)


def _numpy_dtype(trt, dtype) -> np.dtype:
    return np.dtype(trt.nptype(dtype))


class TrtEngine:
    """One deserialised plan, its execution context and its I/O buffers."""

    def __init__(self, plan: Path | str, *, stream: Any = None, device: DeviceInfo | None = None, cache_dir: Path | str | None = None):
        trt = import_tensorrt()
        cuda = import_cuda_driver()
        cuda.init()
        self._cuda = cuda
        self._pushed = None
        if cuda.Context.get_current() is None:
            self._pushed = cuda.Device(0).retain_primary_context()
            self._pushed.push()
        try:
            device = device or current_device()
            self.path, record = resolve_plan(plan, device, cache_dir=cache_dir)
            self.meta: Artifact = Artifact.from_json(record["artifact"], self.path)
            self.precision = record["precision"]
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise MestreamError(f"TensorRT could not deserialise {self.path}; delete it and rebuild with `mestream build-engine`")
            self._context = self._engine.create_execution_context()
            self.stream = stream if stream is not None else cuda.Stream()
            self._device: dict[str, Any] = {}
            self._host_out: dict[str, np.ndarray] = {}
            self._inputs: list[str] = []
            self._outputs: list[str] = []
            self._allocate(trt)
        except BaseException:
            self._release_context()
            raise

    def _allocate(self, trt) -> None:
        declared = {spec.name: spec for spec in (*self.meta.inputs, *self.meta.outputs)}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = _numpy_dtype(trt, self._engine.get_tensor_dtype(name))
            spec = declared.get(name)
            if spec is None or tuple(spec.shape) != shape or np.dtype(spec.dtype) != dtype:
                raise MestreamError(
                    f"engine {self.path.name}: tensor {name!r} is {dtype} {list(shape)} in the plan but "
                    f"{'absent' if spec is None else f'{spec.dtype} {list(spec.shape)}'} in its metadata; rebuild it"
                )
            if is_input:
                self._context.set_input_shape(name, shape)  # static: min = opt = max
                self._inputs.append(name)
            else:
                self._outputs.append(name)
                self._host_out[name] = self._cuda.pagelocked_empty(shape, dtype)
            self._device[name] = self._cuda.mem_alloc(max(1, int(np.prod(shape)) * dtype.itemsize))
            self._context.set_tensor_address(name, int(self._device[name]))
        log.info("TensorRT engine %s (%s): inputs %s, outputs %s", self.path.name, self.precision, self._inputs, self._outputs)

    def input_spec(self) -> tuple[TensorInfo, ...]:
        return self.meta.inputs

    def output_spec(self) -> tuple[TensorInfo, ...]:
        return self.meta.outputs

    def device_outputs(self) -> dict[str, int]:
        """Device pointers of the output buffers (valid until close()), for consumers staying on the GPU."""
        return {name: int(self._device[name]) for name in self._outputs}

    def _run(self, stream) -> dict[str, np.ndarray]:
        if not self._context.execute_async_v3(stream.handle):
            raise MestreamError(f"TensorRT execution of {self.path.name} failed; run with -vv for the TensorRT log")
        for name in self._outputs:
            self._cuda.memcpy_dtoh_async(self._host_out[name], self._device[name], stream)
        stream.synchronize()
        return {name: np.array(self._host_out[name]) for name in self._outputs}

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_open()
        feed = check_inputs(self.meta.inputs, inputs)
        for name in self._inputs:
            self._context.set_tensor_address(name, int(self._device[name]))
            self._cuda.memcpy_htod_async(self._device[name], feed[name], self.stream)
        return self._run(self.stream)

    def infer_device(self, pointers: dict[str, int], stream: Any = None) -> dict[str, np.ndarray]:
        """Run on inputs already on the GPU: `pointers` maps each input name to a device address holding
        a C-contiguous float32 tensor of the input's shape (e.g. the CUDA flow kernels' output buffer).
        No host round trip: the engine reads those addresses directly. `stream` must be the stream the
        producer ran on (or one ordered after it), so the flow is complete before the engine reads it.
        """
        self._check_open()
        missing = [name for name in self._inputs if name not in pointers]
        unknown = sorted(set(pointers) - set(self._inputs))
        if missing or unknown:
            raise MestreamError(
                f"infer_device: expected device pointers for {', '.join(self._inputs)}, "
                f"got {', '.join(sorted(pointers)) or 'none'}"
            )
        for name in self._inputs:
            self._context.set_tensor_address(name, int(pointers[name]))
        try:
            return self._run(stream if stream is not None else self.stream)
        finally:
            for name in self._inputs:  # back to our own buffers for the next host infer()
                self._context.set_tensor_address(name, int(self._device[name]))

    def _check_open(self) -> None:
        if self._context is None:
            raise MestreamError(f"engine {self.path.name} is closed; open it again with open_engine()")

    def close(self) -> None:
        if getattr(self, "_context", None) is None:
            return
        self.stream.synchronize()
        for buffer in self._device.values():
            buffer.free()
        self._device.clear()
        self._context = None
        self._engine = None
        self._runtime = None
        self._release_context()

    def _release_context(self) -> None:
        if self._pushed is not None:
            self._cuda.Context.pop()
            self._pushed = None

    def __enter__(self) -> TrtEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrtEngine({str(self.path)!r}, {self.precision}, model={self.meta.family}:{self.meta.short_id})"


def open_trt_engine(
    path: Path | str,
    *,
    precision: str = "fp32",
    cache_dir: Path | str | None = None,
    calib_dir: Path | str | None = None,
    stream: Any = None,
) -> TrtEngine:
    """A TensorRT engine for an artifact (.onnx: built or taken from the cache) or a cached plan."""
    path = Path(path)
    import_tensorrt()  # say "TensorRT is missing" before anything about pycuda
    if path.suffix.lower() == ".onnx":
        cuda = import_cuda_driver()
        cuda.init()
        pushed = None
        if cuda.Context.get_current() is None:  # building needs a context too
            pushed = cuda.Device(0).retain_primary_context()
            pushed.push()
        try:
            plan = ensure_engine(path, precision=precision, cache_dir=cache_dir, calib_dir=calib_dir)
        finally:
            if pushed is not None:
                cuda.Context.pop()
        return TrtEngine(plan, stream=stream, cache_dir=cache_dir)
    return TrtEngine(path, stream=stream, cache_dir=cache_dir)
