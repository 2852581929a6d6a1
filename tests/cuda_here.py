"""Whether the tests that need pycuda and an NVIDIA GPU can run here, and why not (for their skip reason).

    REASON = cuda_unusable_reason()                          # module level: pytest.mark.skipif(REASON is not None, ...)
    cuda = cuda_or_skip("the GPU infer path needs it")       # inside a test or fixture

Importable from every test folder: pytest puts tests/ on sys.path for tests/conftest.py.
"""

from __future__ import annotations

import importlib.util

import pytest


def cuda_unusable_reason(need: str = "") -> str | None:
    """None where pycuda imports and the CUDA driver sees a device; otherwise what is missing.

    `need` says what needs it, appended to the pycuda message ("CUDA flow tests need it").
    """
    if importlib.util.find_spec("pycuda") is None:
        return "pycuda is not installed (the [gpu] extra: pip install 'mestream[gpu]')" + (f": {need}" if need else "")
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no NVIDIA GPU visible to the CUDA driver"
    except Exception as exc:  # no driver, or a broken one: the reason is what matters here
        return f"the CUDA driver cannot start here: {exc}"
    return None


def cuda_or_skip(need: str = ""):
    """pycuda.driver, initialised, or the calling test skipped with the reason."""
    reason = cuda_unusable_reason(need)
    if reason is not None:
        pytest.skip(reason)
    import pycuda.driver as cuda

    return cuda
