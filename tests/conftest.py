"""Shared fixtures: the research-only assets are read in place through MESTREAM_ASSETS, never copied."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def assets() -> Path:
    root = os.environ.get("MESTREAM_ASSETS")
    if not root:
        pytest.skip("MESTREAM_ASSETS is not set: real test material (../shared/assets) is not available")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"MESTREAM_ASSETS={root} is not a directory")
    return path
