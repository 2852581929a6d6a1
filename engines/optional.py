"""Heavy optional dependencies, imported where they are needed, with the one error that names their extra.

    torch = require("torch", "train")
    cuda = require("pycuda.driver", "gpu", package="pycuda")

engines is the leaf of the dependency graph (edge -> engines <- trainer), so edge, engines and trainer all
import this one helper. A missing package is a user's install choice, not a bug: the error is one line
saying which extra brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from engines.errors import missing_extra


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import `module`; if it is missing, raise a MestreamError naming `package` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(package or module.split(".")[0], extra) from None
