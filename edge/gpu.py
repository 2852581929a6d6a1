"""The infer process's GPU: is there one, which path runs (`device = "auto" | "gpu" | "cpu"`), and its one
CUDA context and stream.

DESIGN.md section 3: GPU work stays in ONE process (the infer process) with one CUDA context and one stream;
flow kernels and the TensorRT engine run back to back on that stream. pycuda contexts are per thread, so the
context is made current in the thread that opens the stage and every later use must come from that thread
(edge/process.py runs open(), process() and close() of a stage in its main thread).

    probe = probe_gpu()                               # light: no context, no TensorRT import
    choice = choose_device("auto", probe)             # DeviceChoice("gpu", "trt", ...) or ("cpu", "ort", ...)
    announce(choice)                                  # "no GPU found (...), using the CPU path", once per process
    gpu = open_process_gpu()                          # the process's context + stream (same object on every call)
    ... CudaTVL1(gpu.context, gpu.stream, ...) ... engine.infer_device(ptrs, stream=gpu.stream) ...
    gpu.close()

Only light imports at module top: pycuda is imported by the functions that need it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from dataclasses import dataclass
from typing import Any

from edge.topology import DEVICES
from engines.errors import MestreamError
from engines.optional import require

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuProbe:
    """What this machine offers the infer process. `reason` says what is missing, in a few words."""

    cuda: bool  # pycuda imports and the CUDA driver sees the device
    tensorrt: bool  # a TensorRT 10 Python module is installed (not imported: that loads libnvinfer)
    name: str = ""
    compute_capability: tuple[int, int] = (0, 0)
    reason: str = ""


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "gpu" | "cpu"
    engine: str  # "trt" | "ort": what classifies
    reason: str  # why, for the log line


def _tensorrt_installed() -> tuple[bool, str]:
    if importlib.util.find_spec("tensorrt") is None:
        return False, "TensorRT is not installed"
    try:
        version = importlib.metadata.version("tensorrt")
    except importlib.metadata.PackageNotFoundError:
        return True, ""  # JetPack's apt bindings carry no pip metadata; opening the engine checks the version
    if int(version.split(".")[0]) < 10:
        return False, f"TensorRT {version} is installed, mestream needs TensorRT 10"
    return True, ""


def probe_gpu(device_index: int = 0, *, driver: Any = None) -> GpuProbe:
    """Look for a CUDA device usable through pycuda, and for TensorRT. Never raises, never makes a context.

    `driver` is the pycuda.driver module (tests pass a stand-in); None imports it.
    """
    trt_ok, trt_reason = _tensorrt_installed()
    if driver is None:
        try:
            import pycuda.driver as driver
        except ImportError:
            return GpuProbe(False, trt_ok, reason="pycuda is not installed (the [gpu] extra)")
    try:
        driver.init()
        count = driver.Device.count()
    except Exception as exc:  # pycuda.driver.Error and the loader's OSError: no driver, no device node
        return GpuProbe(False, trt_ok, reason=f"the CUDA driver cannot start ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    if count <= device_index:
        return GpuProbe(False, trt_ok, reason=f"the CUDA driver sees {count} device(s), none with index {device_index}")
    device = driver.Device(device_index)
    return GpuProbe(True, trt_ok, name=str(device.name()), compute_capability=tuple(device.compute_capability()),
                    reason=trt_reason)


def check_device_name(device: str, where: str = "topology [stages.classify] device") -> str:
    if device not in DEVICES:
        raise MestreamError(f"{where} = {device!r}: expected one of {', '.join(repr(d) for d in DEVICES)}; "
                            "\"auto\" takes the GPU when one is usable")
    return device


def choose_device(requested: str, probe: GpuProbe) -> DeviceChoice:
    """The path the infer stage takes. "auto": the GPU with TensorRT when both are there, else the CPU.
    "gpu": the GPU, with TensorRT if installed, else ONNX Runtime on the GPU's flow input; refused (one
    MestreamError line) where no usable GPU exists. "cpu": the CPU path, whatever the machine has."""
    check_device_name(requested)
    if requested == "cpu":
        return DeviceChoice("cpu", "ort", "device = \"cpu\" in the topology")
    if requested == "gpu":
        if not probe.cuda:
            raise MestreamError(
                f"topology [stages.classify] device = \"gpu\" but no GPU can be used here: {probe.reason}; "
                "install the NVIDIA driver and 'mestream[gpu]' (`mestream doctor --require gpu` says what is missing), "
                "or set device = \"auto\" or \"cpu\""
            )
        if probe.tensorrt:
            return DeviceChoice("gpu", "trt", f"{probe.name} with TensorRT")
        return DeviceChoice("gpu", "ort", f"{probe.name} for the flow; {probe.reason}, so ONNX Runtime classifies")
    if probe.cuda and probe.tensorrt:
        return DeviceChoice("gpu", "trt", f"{probe.name} with TensorRT")
    why = probe.reason if not probe.cuda else f"{probe.name} found but {probe.reason}"
    return DeviceChoice("cpu", "ort", why)


_announced: set[tuple[str, str, str]] = set()
_announce_lock = threading.Lock()


def announce(choice: DeviceChoice, logger: logging.Logger = log) -> bool:
    """Say the choice in the log once per process (a restarted stage in the same process stays quiet).
    Returns whether a line was written."""
    key = (choice.device, choice.engine, choice.reason)
    with _announce_lock:
        if key in _announced:
            return False
        _announced.add(key)
    if choice.device == "cpu" and not choice.reason.startswith("device ="):
        logger.info("no GPU found (%s), using the CPU path", choice.reason)
    elif choice.device == "cpu":
        logger.info("infer runs on the CPU (%s)", choice.reason)
    else:
        logger.info("infer runs on the GPU: %s (flow kernels and engine on one stream)", choice.reason)
    return True


class GpuContext:
    """The process's one CUDA context (the device's primary context, which TensorRT, CuPy and torch share)
    and its one stream, current in the thread that opened it. Get it with `open_process_gpu()`."""

    def __init__(self, driver: Any, device_index: int) -> None:
        self.driver = driver  # pycuda.driver: allocations and events for the stages that share the context
        self.device_index = device_index
        driver.init()
        if device_index >= driver.Device.count():
            raise MestreamError(
                f"CUDA device {device_index} does not exist: this machine has {driver.Device.count()}; "
                "set CUDA_VISIBLE_DEVICES or pick another index"
            )
        device = driver.Device(device_index)
        self.name = str(device.name())
        self.compute_capability = tuple(device.compute_capability())
        self.context = device.retain_primary_context()
        self.context.push()
        self.thread = threading.get_ident()
        self.stream = driver.Stream()
        self.users = 1

    def check_thread(self) -> None:
        """Refuse use from a thread other than the owner: the context is not current there."""
        here = threading.get_ident()
        if here != self.thread:
            raise MestreamError(
                f"the infer process's CUDA context belongs to thread {self.thread} but thread {here} used it; "
                "pycuda contexts are per thread: open and run the GPU stage in one thread"
            )

    def close(self) -> None:
        """Drop one user; the last one synchronises the stream, pops the context and releases it."""
        global _process_gpu
        self.check_thread()
        with _gpu_lock:
            self.users -= 1
            if self.users > 0:
                return
            if _process_gpu is self:
                _process_gpu = None
        self.stream.synchronize()
        self.driver.Context.pop()
        self.context.detach()


_process_gpu: GpuContext | None = None
_gpu_lock = threading.Lock()


def open_process_gpu(device_index: int = 0, *, driver: Any = None) -> GpuContext:
    """The process's GPU context and stream: made on the first call (current in the calling thread),
    the same object afterwards (one more user; each caller closes it once)."""
    global _process_gpu
    with _gpu_lock:
        if _process_gpu is not None:
            _process_gpu.check_thread()
            if _process_gpu.device_index != device_index:
                raise MestreamError(
                    f"this process already holds CUDA device {_process_gpu.device_index}; device {device_index} "
                    "would make a second context: run every GPU stage on one device"
                )
            _process_gpu.users += 1
            return _process_gpu
        if driver is None:
            driver = require("pycuda.driver", "gpu", package="pycuda")
        _process_gpu = GpuContext(driver, device_index)
        return _process_gpu
