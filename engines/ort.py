"""ONNX Runtime runner: the CPU engine for any mestream artifact.

    engine = OrtEngine("model.onnx")
    out = engine.infer({"flow": flow})   # {"logits": (1, C), "probs": (1, C)}

On open it checks that the graph really has the inputs and outputs its metadata claims, so a hand-edited
or half-exported file is refused at start-up, not on the first event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.artifact import Artifact, TensorInfo, artifact_from_metadata_map, open_ort_session
from engines.base import check_inputs
from engines.errors import MestreamError

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8"}


def _graph_specs(nodes) -> dict[str, tuple[tuple, str]]:
    return {n.name: (tuple(n.shape), _ORT_TYPES.get(n.type, n.type)) for n in nodes}


def _check_graph_matches(path: Path, declared: tuple[TensorInfo, ...], actual: dict, kind: str) -> None:
    for spec in declared:
        if spec.name not in actual:
            raise MestreamError(
                f"{path}: metadata declares {kind} {spec.name!r} but the graph has {', '.join(actual) or 'none'}; "
                "re-export the artifact"
            )
        shape, dtype = actual[spec.name]
        if tuple(shape) != tuple(spec.shape) or dtype != spec.dtype:
            raise MestreamError(
                f"{path}: {kind} {spec.name!r} is {dtype} {list(shape)} in the graph but {spec.dtype} "
                f"{list(spec.shape)} in the metadata; re-export the artifact"
            )


class OrtEngine:
    """Runs one artifact with ONNX Runtime. Buffers for inputs are the caller's; outputs come back new."""

    # One thread by default: mestream's models run in 0.1-0.2 ms, and ONNX Runtime's default pool (a thread per
    # core) spins for about 35 ms after every run, a core taken from track and spot for each event (measured:
    # 0.13 ms wall but 2.4 ms CPU per call with 2 ms between calls, against 0.15 ms and 0.18 ms on one thread).
    # None = ONNX Runtime's own choice.
    def __init__(self, path: Path | str, providers: list[str] | None = None, threads: int | None = 1):
        self.path = Path(path)
        self._session = open_ort_session(self.path, providers=providers, threads=threads)
        self.meta: Artifact = artifact_from_metadata_map(
            dict(self._session.get_modelmeta().custom_metadata_map), self.path
        )
        _check_graph_matches(self.path, self.meta.inputs, _graph_specs(self._session.get_inputs()), "input")
        _check_graph_matches(self.path, self.meta.outputs, _graph_specs(self._session.get_outputs()), "output")
        self._output_names = [spec.name for spec in self.meta.outputs]

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def input_spec(self) -> tuple[TensorInfo, ...]:
        return self.meta.inputs

    def output_spec(self) -> tuple[TensorInfo, ...]:
        return self.meta.outputs

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise MestreamError(f"engine for {self.path} is closed; open it again with open_engine()")
        feed = check_inputs(self.meta.inputs, inputs)
        values = self._session.run(self._output_names, feed)
        return dict(zip(self._output_names, values))

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> OrtEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OrtEngine({str(self.path)!r}, model={self.meta.family}:{self.meta.short_id})"
