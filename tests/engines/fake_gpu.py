"""A stand-in for `tensorrt` and `pycuda.driver`, just enough of the TensorRT 10 / pycuda surface to run
engines/trt.py on a CPU: device memory is a dict of byte buffers keyed by fake addresses, and the "engine"
is the tiny linear artifact (flow -> Gemm -> logits -> Softmax -> probs) evaluated with numpy.

It checks the runner's bookkeeping (buffers allocated once, addresses set by name before
execute_async_v3, device pointers honoured, contexts pushed and popped), not TensorRT itself: the real
thing is tests/engines/test_trt.py, which runs where TensorRT and a GPU exist.
"""

from __future__ import annotations

import io
import itertools
import types

import numpy as np

MEMORY: dict[int, bytearray] = {}
_addresses = itertools.count(0x7F0000000000, 0x100000)
STATS = {"allocations": 0, "executions": 0, "pushes": 0, "pops": 0}


def plan_bytes(weight: np.ndarray, bias: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, W=weight, B=bias)
    return buffer.getvalue()


def _read(address: int, shape, dtype=np.float32) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    for base, block in MEMORY.items():
        if base <= address < base + len(block):
            start = address - base
            return np.frombuffer(bytes(block[start : start + nbytes]), dtype=dtype).reshape(shape)
    raise RuntimeError(f"illegal address {address:#x}")


def _write(address: int, array: np.ndarray) -> None:
    data = np.ascontiguousarray(array).tobytes()
    MEMORY[address][: len(data)] = data


# ------------------------------------------------------------------------------------------ pycuda.driver


class DeviceAllocation:
    def __init__(self, nbytes: int):
        self.address = next(_addresses)
        MEMORY[self.address] = bytearray(nbytes)
        STATS["allocations"] += 1

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        MEMORY.pop(self.address, None)


class _Context:
    current = None

    def push(self):
        STATS["pushes"] += 1
        _Context.current = self

    @staticmethod
    def get_current():
        return _Context.current

    @staticmethod
    def pop():
        STATS["pops"] += 1
        _Context.current = None


class _Device:
    def __init__(self, index: int):
        self.index = index

    @staticmethod
    def count() -> int:
        return 1

    def name(self) -> str:
        return "Fake GPU"

    def compute_capability(self):
        return (8, 7)

    def retain_primary_context(self):
        return _Context()


class _Stream:
    handle = 1234

    def synchronize(self):
        pass


def make_driver():
    driver = types.ModuleType("pycuda.driver")
    driver.init = lambda: None
    driver.Device = _Device
    driver.Context = _Context
    driver.Stream = _Stream
    driver.mem_alloc = DeviceAllocation
    driver.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    driver.memcpy_htod = lambda dev, host: _write(int(dev), host)
    driver.memcpy_htod_async = lambda dev, host, stream=None: _write(int(dev), host)
    driver.memcpy_dtoh_async = lambda host, dev, stream=None: np.copyto(host, _read(int(dev), host.shape, host.dtype))
    return driver


# ------------------------------------------------------------------------------------------ tensorrt


class _TensorIOMode:
    INPUT = "input"
    OUTPUT = "output"


class _DataType:
    FLOAT = "float"


class _Logger:
    WARNING = 2

    def __init__(self, level=None):
        self.level = level


_IO = {
    "flow": (_TensorIOMode.INPUT, (1, 3, 28, 28)),
    "logits": (_TensorIOMode.OUTPUT, (1, 3)),
    "probs": (_TensorIOMode.OUTPUT, (1, 3)),
}


def _pycuda_read(address: int, shape, dtype=np.float32) -> np.ndarray:
    import pycuda.driver as cuda

    host = np.empty(shape, dtype)
    cuda.memcpy_dtoh(host, address)
    return host


def _pycuda_write(address: int, array: np.ndarray) -> None:
    import pycuda.driver as cuda

    cuda.memcpy_htod(address, np.ascontiguousarray(array))


class _ExecutionContext:
    # where tensors live: the fake memory dict, or real GPU memory through pycuda (make_tensorrt(real_memory=True))
    read, write = staticmethod(_read), staticmethod(_write)

    def __init__(self, engine):
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.shapes: dict[str, tuple] = {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name, address):
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle):
        for name in _IO:
            if name not in self.addresses:
                raise RuntimeError(f"Address is not set for tensor {name}")
        flow = self.read(self.addresses["flow"], (1, 3, 28, 28))
        logits = (flow.reshape(1, -1) @ self.engine.weight.T + self.engine.bias).astype(np.float32)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        self.write(self.addresses["logits"], logits)
        self.write(self.addresses["probs"], (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32))
        STATS["executions"] += 1
        return True


class _Engine:
    context_type = _ExecutionContext

    def __init__(self, plan: bytes):
        arrays = np.load(io.BytesIO(plan))
        self.weight, self.bias = arrays["W"], arrays["B"]
        self.num_io_tensors = len(_IO)

    def get_tensor_name(self, i):
        return list(_IO)[i]

    def get_tensor_mode(self, name):
        return _IO[name][0]

    def get_tensor_shape(self, name):
        return _IO[name][1]

    def get_tensor_dtype(self, name):
        return _DataType.FLOAT

    def create_execution_context(self):
        return self.context_type(self)


class _Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, plan: bytes):
        try:
            return _Engine(plan)
        except Exception:  # real TensorRT returns None for a plan it cannot read
            return None


class _RealMemoryContext(_ExecutionContext):
    read, write = staticmethod(_pycuda_read), staticmethod(_pycuda_write)


class _RealMemoryEngine(_Engine):
    context_type = _RealMemoryContext


class _RealMemoryRuntime(_Runtime):
    def deserialize_cuda_engine(self, plan: bytes):
        try:
            return _RealMemoryEngine(plan)
        except Exception:
            return None


def make_tensorrt(real_memory: bool = False):
    """real_memory=True: tensors are read from and written to real GPU memory with pycuda."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.0.0"
    trt.Logger = _Logger
    trt.Runtime = _RealMemoryRuntime if real_memory else _Runtime
    trt.TensorIOMode = _TensorIOMode
    trt.nptype = lambda dtype: np.float32
    return trt
