"""Tiny artifacts built straight with onnx.helper (no torch), so engine tests run in well under a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.artifact import METADATA_KEY, Artifact, TensorInfo

CLASSES = ("negative", "positive", "surprise")


def linear_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 3 * 28 * 28)).astype(np.float32) * 0.05, rng.normal(size=(3,)).astype(np.float32)


def tiny_artifact_meta(model_id: str = "0" * 64) -> Artifact:
    return Artifact(
        family="tiny",
        model_id=model_id,
        inputs=(TensorInfo("flow", (1, 3, 28, 28), "float32", "u, v, strain", "min-max [0,1]"),),
        outputs=(
            TensorInfo("logits", (1, 3), "float32", "raw class scores"),
            TensorInfo("probs", (1, 3), "float32", "softmax of logits"),
        ),
        classes=CLASSES,
        flow={"algorithm": "tvl1", "params": {"tau": 0.25}, "form": "u, v, strain 28x28"},
        training={"dataset": "megc2019", "samples": 442, "subjects": 68},
        protocol="loso",
        scores={"parts": {"full": {"uf1": 0.7, "uar": 0.7, "acc": 0.7}}},
        selection="fixed recipe",
        versions={"mestream": "test", "opset": 17},
        created="2026-01-01T00:00:00Z",
    )


def make_linear_onnx(path: Path, meta: Artifact | None = None, metadata_text: str | None = None, seed: int = 0) -> Path:
    """flow (1,3,28,28) -> Flatten -> Gemm -> logits (1,3) -> Softmax -> probs, with optional metadata."""
    onnx = pytest.importorskip("onnx", reason="onnx comes with the [train] extra")
    from onnx import TensorProto, helper, numpy_helper

    weight, bias = linear_weights(seed)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["flow"], ["flat"], axis=1, name="flatten"),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1, name="gemm"),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
        ],
        "tiny",
        [helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 3, 28, 28])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3]),
        ],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None or metadata_text is not None:
        entry = model.metadata_props.add()
        entry.key = METADATA_KEY
        entry.value = metadata_text if metadata_text is not None else meta.to_text()
    onnx.save(model, str(path))
    return path


def reference_outputs(flow: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    weight, bias = linear_weights(seed)
    logits = flow.reshape(1, -1).astype(np.float64) @ weight.T.astype(np.float64) + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, exp / exp.sum(axis=1, keepdims=True)


