"""engines.optional.require: an optional dependency is imported, or named with the extra that brings it."""

import json

import pytest

from engines.errors import MestreamError
from engines.optional import require


def test_an_installed_module_is_returned():
    assert require("json", "train") is json


def test_a_missing_module_is_one_line_naming_the_package_and_its_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pycuda", None)  # as if it were not installed
    with pytest.raises(MestreamError) as info:
        require("pycuda.driver", "gpu", package="pycuda")
    message = str(info.value)
    assert "\n" not in message and "pycuda is not installed" in message and "pip install 'mestream[gpu]'" in message
