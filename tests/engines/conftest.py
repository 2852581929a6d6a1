"""Fixtures for the engine tests: a tiny linear artifact on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_artifacts import make_linear_onnx, tiny_artifact_meta


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    return make_linear_onnx(tmp_path / "tiny.onnx", tiny_artifact_meta())
