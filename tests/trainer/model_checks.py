"""Checks every model family's tests make: gradients reach every parameter, and the ONNX export matches torch.

    assert_every_parameter_has_a_finite_gradient(model)           # after loss.backward()
    assert_onnx_matches_torch(model, {"flow": flow, "apex": apex})
"""

from __future__ import annotations

import io

import numpy as np
import pytest


def assert_every_parameter_has_a_finite_gradient(model) -> None:
    import torch

    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def assert_onnx_matches_torch(model, inputs: dict, atol: float = 1e-4) -> None:
    """Opset 17 export with `inputs` named as given, ONNX Runtime within `atol` of torch, TensorRT-parseable ops."""
    import torch

    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a base dependency: pip install -e .")
    args = tuple(inputs.values())
    buffer = io.BytesIO()
    torch.onnx.export(model, args, buffer, input_names=list(inputs), output_names=["logits"], opset_version=17,
                      dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: x.numpy() for name, x in inputs.items()})[0]
    np.testing.assert_allclose(got, model(*args).detach().numpy(), atol=atol)
    onnx = pytest.importorskip("onnx", reason="onnx comes with the [train] extra")
    from engines.onnx_ops import unsupported_ops

    assert unsupported_ops(onnx.load_from_string(buffer.getvalue())) == []
