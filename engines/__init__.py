"""Artifacts and the engines that run them: ONNX Runtime on any CPU, TensorRT on NVIDIA GPUs.

    from engines import open_engine, default_artifact_path
    with open_engine(default_artifact_path()) as engine:
        out = engine.infer({"flow": flow})   # {"logits": (1, C), "probs": (1, C)}
"""

from pathlib import Path

from engines.artifact import Artifact, TensorInfo, read_artifact
from engines.base import Engine, open_engine
from engines.errors import MestreamError

DEFAULT_ARTIFACT = "mestream-default.onnx"
DEFAULT_AU_ARTIFACT = "mestream-au.onnx"  # action units, run beside the classifier (engines/default/AU_CARD.md)


def default_artifact_path() -> Path:
    """The artifact shipped inside the package (see engines/default/MODEL_CARD.md)."""
    path = Path(__file__).resolve().parent / "default" / DEFAULT_ARTIFACT
    if not path.is_file():
        raise MestreamError(
            f"the default artifact {path} is missing from this install; reinstall mestream or pass --artifact PATH"
        )
    return path


def default_au_artifact_path() -> Path:
    """The action-unit artifact shipped inside the package (see engines/default/AU_CARD.md)."""
    path = Path(__file__).resolve().parent / "default" / DEFAULT_AU_ARTIFACT
    if not path.is_file():
        raise MestreamError(
            f"the default action-unit artifact {path} is missing from this install; reinstall mestream, point "
            "action_units to another AU artifact, or set it to \"off\""
        )
    return path


__all__ = [
    "Artifact",
    "Engine",
    "MestreamError",
    "TensorInfo",
    "default_artifact_path",
    "default_au_artifact_path",
    "open_engine",
    "read_artifact",
]
