"""Artifacts and the engines that run them: ONNX Runtime on any CPU, TensorRT on NVIDIA GPUs."""

from engines.errors import MestreamError

__all__ = ["MestreamError"]
