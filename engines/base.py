"""The Engine protocol every backend follows, and `open_engine`, which picks the backend by file suffix.

    with open_engine("engines/default/mestream-default.onnx") as engine:
        probs = engine.infer({"flow": flow})["probs"]   # flow: (1, 3, 28, 28) float32

Backends are named by string and imported on demand, so opening an ONNX artifact never imports TensorRT.
`.onnx` runs on ONNX Runtime unless `backend="trt"` asks for a TensorRT engine built (or taken from the
cache) for this GPU; `.plan`/`.engine` load a cached TensorRT plan with its JSON sidecar.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engines.artifact import Artifact, TensorInfo
from engines.errors import MestreamError


@runtime_checkable
class Engine(Protocol):
    meta: Artifact

    def input_spec(self) -> tuple[TensorInfo, ...]: ...

    def output_spec(self) -> tuple[TensorInfo, ...]: ...

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc: object) -> None: ...


# file suffix -> "module:Class"; the module is imported only when a file of that kind is opened
BACKENDS: dict[str, str] = {
    ".onnx": "engines.ort:OrtEngine",
    ".plan": "engines.trt:TrtEngine",
    ".engine": "engines.trt:TrtEngine",
}

# explicit backend names -> "module:callable(path, **options)"
NAMED_BACKENDS: dict[str, str] = {
    "ort": "engines.ort:OrtEngine",
    "trt": "engines.trt:open_trt_engine",
}


def _load(target: str):
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def open_engine(path: Path | str, backend: str | None = None, **options: Any) -> Engine:
    """Open an artifact or a cached plan. `backend` ("ort" | "trt") overrides the choice by suffix."""
    path = Path(path)
    if backend is not None:
        if backend not in NAMED_BACKENDS:
            raise MestreamError(f"unknown engine backend {backend!r}; expected one of: {', '.join(NAMED_BACKENDS)}")
        return _load(NAMED_BACKENDS[backend])(path, **options)
    suffix = path.suffix.lower()
    if suffix not in BACKENDS:
        raise MestreamError(
            f"cannot tell the engine for {path} from its suffix {suffix or '(none)'!r}; "
            f"expected one of: {', '.join(BACKENDS)}"
        )
    return _load(BACKENDS[suffix])(path, **options)


def check_inputs(specs: tuple[TensorInfo, ...], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate `inputs` against the artifact's specs; return C-contiguous arrays in spec order.

    One-line MestreamError naming the input, the expected and the got: a missing or unknown name, a
    wrong shape, a wrong dtype. Never converts silently (a float64 flow is a bug upstream, not ours to hide).
    """
    if not isinstance(inputs, dict):
        raise MestreamError(f"engine inputs must be a dict of name -> numpy array, got {type(inputs).__name__}")
    expected = {spec.name for spec in specs}
    unknown = sorted(set(inputs) - expected)
    if unknown:
        raise MestreamError(
            f"unknown engine input {unknown[0]!r}; this artifact expects: {', '.join(s.name for s in specs)}"
        )
    checked: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.name not in inputs:
            raise MestreamError(
                f"missing engine input {spec.name!r}: expected {spec.dtype} {list(spec.shape)} ({spec.meaning or 'see the artifact metadata'})"
            )
        array = inputs[spec.name]
        if not isinstance(array, np.ndarray):
            raise MestreamError(f"engine input {spec.name!r}: expected a numpy array, got {type(array).__name__}")
        if tuple(array.shape) != tuple(spec.shape):
            raise MestreamError(
                f"engine input {spec.name!r}: expected shape {list(spec.shape)}, got {list(array.shape)}"
            )
        if array.dtype != np.dtype(spec.dtype):
            raise MestreamError(
                f"engine input {spec.name!r}: expected dtype {spec.dtype}, got {array.dtype}; convert it with .astype(np.{spec.dtype})"
            )
        checked[spec.name] = np.ascontiguousarray(array)
    return checked
