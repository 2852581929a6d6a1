"""infer on the GPU: onset/apex crops -> CUDA TV-L1 -> TensorRT engine on one stream -> the same event JSON.

The infer process owns the one CUDA context and stream (edge/gpu.py). An interval's two crops are copied up
once; the flow kernels (edge/perception/flow_cuda.py) leave the (1, 3, S, S) recognition input in device
memory and its address goes straight to the TensorRT engine (`infer_device`): no host round trip between
flow and classification, both queued on the same stream. The event is built by the CPU path's own
function (edge/stages/classify.py `build_event`), so both paths publish the same JSON.

The topology chooses the path per stage with `device` in [stages.classify] (edge/gpu.py `choose_device`):

    [stages.classify]
    device = "auto"      # GPU + pycuda + TensorRT -> GPU path; else the CPU path (said once in the log)
    precision = "fp16"   # TensorRT plan precision on the GPU path: fp32 | fp16 | int8

`build` (the registry's factory, edge/stages/registry.py; called in the supervisor's preflight too)
refuses `device = "gpu"` where no GPU can be used, before any process starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.gpu import GpuProbe, announce, check_device_name, choose_device, open_process_gpu, probe_gpu
from edge.messages import Message
from edge.stages.classify import (
    Classify,
    ClassifyOptions,
    Scores,
    SpeculativeResults,
    _as_input,
    _flow_params,
    au_fields,
    build_event,
    flow_side,
    open_au_engine,
    score_message,
)
from edge.stages.classify_input import crops_for_flow
from engines.errors import MestreamError

if TYPE_CHECKING:
    from edge.process import RunOptions

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")  # engines/trt_build.py PRECISIONS, without importing it here
DEFAULT_CROP = 128  # TrackParams.size: the flow buffers for this crop side are made (and compiled) at open()


@dataclass(frozen=True)
class DeviceOptions:
    device: str = "auto"  # "auto" | "gpu" | "cpu"
    precision: str = "fp32"  # the TensorRT plan's precision on the GPU path


def build(options: dict[str, Any], run: RunOptions, resume_seq: int = 0):
    """The classify stage from its [stages.classify] table, on the run's artifact (device: see build_classify)."""
    return build_classify(run.artifact, options)


def build_classify(artifact: Path | str, table: dict[str, Any], *, probe_fn: Callable[[], GpuProbe] = probe_gpu):
    """The "classify" stage from its [stages.classify] table: device/precision here, the rest ClassifyOptions."""
    from edge.topology import stage_options_of

    table = dict(table)
    device_table = {key: table.pop(key) for key in ("device", "precision") if key in table}
    device = stage_options_of("classify", device_table, DeviceOptions)
    check_device_name(device.device)
    if device.precision not in PRECISIONS:
        raise MestreamError(f"topology [stages.classify] precision = {device.precision!r}: expected one of {', '.join(PRECISIONS)}")
    options = stage_options_of("classify", table, ClassifyOptions)
    if device.device == "gpu":
        choose_device("gpu", probe_fn())  # refuse now, at start, rather than in the infer process
    return InferOnDevice(artifact, options=options, device=device, probe_fn=probe_fn)


class InferOnDevice:
    """The "classify" stage whose path (GPU or CPU) is chosen when it opens, in the process that runs it."""

    name = "classify"

    def __init__(self, artifact: Path | str, *, options: ClassifyOptions = ClassifyOptions(),
                 device: DeviceOptions = DeviceOptions(), probe_fn: Callable[[], GpuProbe] = probe_gpu,
                 cpu_factory: Callable[..., Any] = Classify, gpu_factory: Callable[..., Any] | None = None) -> None:
        self.artifact = Path(artifact)
        self.options = options
        self.device = device
        self._probe_fn = probe_fn
        self._cpu_factory = cpu_factory
        self._gpu_factory = gpu_factory or ClassifyGpu
        self.stage = None
        self.path = ""  # "gpu" | "cpu" once open
        self._classified_before = 0

    def open(self) -> None:
        requested = self.device.device
        probe = GpuProbe(False, False) if requested == "cpu" else self._probe_fn()
        choice = choose_device(requested, probe)
        announce(choice)
        if choice.device == "gpu":
            stage = self._gpu_factory(self.artifact, options=self.options, engine=choice.engine, precision=self.device.precision)
            try:
                stage.open()
            except Exception as exc:
                if requested == "gpu":
                    raise
                # auto: a GPU that cannot take the model (old TensorRT, full memory) must not stop the pipeline
                log.warning("the GPU path could not open (%s); using the CPU path", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            else:
                self.stage, self.path = stage, "gpu"
                return
        self.stage = self._cpu_factory(self.artifact, options=self.options)
        self.stage.open()
        self.path = "cpu"

    def process(self, msg: Message) -> list[Message]:
        if self.stage is None:
            raise MestreamError("the classify stage was fed before open(); call open() first")
        return self.stage.process(msg)

    def close(self) -> None:
        if self.stage is not None:
            self._classified_before += getattr(self.stage, "classified", 0)  # the count outlives the run
            self.stage.close()
            self.stage = None

    @property
    def classified(self) -> int:
        return self._classified_before + getattr(self.stage, "classified", 0)


def _cuda_flow_factory(context, stream, batch, height, width, params, size):
    from edge.perception.flow_cuda import CudaTVL1

    return CudaTVL1(context, stream, batch=batch, height=height, width=width, params=params, size=size)


class ClassifyGpu:
    """A Stage: "interval" -> "event" with flow and engine on the process's CUDA stream.

    Args:
        artifact: the model artifact (.onnx).
        options: the CPU path's options (min_score).
        engine: "trt" (TensorRT built or taken from the cache for this GPU) or "ort" (ONNX Runtime on the
            downloaded recognition input: GPU machines without TensorRT).
        precision: the TensorRT plan's precision.
        device_index: the CUDA device.
        gpu_factory, engine_factory, flow_factory: stand-ins for tests; None = the real ones.
        crop_side: the aligned crop side whose flow buffers are made at open().
    """

    name = "classify"

    def __init__(self, artifact: Path | str, *, options: ClassifyOptions = ClassifyOptions(), engine: str = "trt",
                 precision: str = "fp32", device_index: int = 0, gpu_factory: Callable[[int], Any] | None = None,
                 engine_factory: Callable[[Path], Any] | None = None, flow_factory: Callable[..., Any] | None = None,
                 flow_params: Any = None, crop_side: int = DEFAULT_CROP,
                 au_engine_factory: Callable[[Path], Any] | None = None) -> None:
        if engine not in ("trt", "ort"):
            raise MestreamError(f"ClassifyGpu engine={engine!r}: expected 'trt' or 'ort'")
        self.artifact = Path(artifact)
        self.options = options
        self.engine_kind = engine
        self.precision = precision
        self.device_index = device_index
        self._gpu_factory = gpu_factory or open_process_gpu
        self._engine_factory = engine_factory
        self._flow_factory = flow_factory or _cuda_flow_factory
        self._flow_params = flow_params
        self.crop_side = crop_side
        self._au_engine_factory = au_engine_factory or open_au_engine
        self._au = None  # the AU model (edge/stages/action_units.py): ONNX Runtime on the downloaded flow
        self._gpu = None
        self._engine = None
        self._flows: dict[tuple[int, int, int], Any] = {}
        self._apex_buffers: dict[str, tuple[Any, np.ndarray]] = {}
        self.classified = 0
        self.speculated = SpeculativeResults(options.speculate_cache)
        self.downloads = 0  # host copies of the recognition input (0 on the device-pointer path)

    # -- lifecycle -----------------------------------------------------------------------------------

    def open(self) -> None:
        self._gpu = self._gpu_factory(self.device_index)
        try:
            self._open_engine()
            meta = self._engine.meta
            self._plan = [Classify._input_plan(spec) for spec in self._engine.input_spec()]
            flow_specs = [spec for kind, spec in self._plan if kind == "flow"]
            if not flow_specs:
                raise MestreamError(f"artifact {self.artifact.name} has no flow input; the GPU path computes flow, use device = \"cpu\"")
            if self._flow_params is None:
                self._flow_params = _flow_params(meta.flow)
            self._classes = list(meta.classes)
            # The device-pointer path needs the engine to read device memory and the flow kernels' layout
            # (1, 3, S, S) float32 to be the artifact's; anything else goes through a host copy.
            self.device_inputs = hasattr(self._engine, "infer_device") and all(
                tuple(spec.shape) == (1, 3, flow_side(spec.shape), flow_side(spec.shape)) and np.dtype(spec.dtype) == np.float32
                for spec in flow_specs)
            if self.device_inputs:
                driver = self._gpu.driver
                for kind, spec in self._plan:
                    if kind == "apex":
                        host = driver.pagelocked_empty(tuple(spec.shape), np.float32)
                        self._apex_buffers[spec.name] = (driver.mem_alloc(host.nbytes), host)
            for side in sorted({flow_side(tuple(spec.shape)) for spec in flow_specs}):
                self._flow_for(self.crop_side, self.crop_side, side)  # compile and allocate now, not on the first event
            from edge.stages.action_units import open_action_units

            self._au = open_action_units(self.options.action_units, self._au_engine_factory, meta.flow,
                                         flow_side(tuple(flow_specs[0].shape)))
            log.info("GPU infer: %s on %s, flow input %s", self.engine_kind, getattr(self._gpu, "name", "GPU"),
                     "by device pointer" if self.device_inputs else "through a host copy")
        except BaseException:
            self.close()
            raise

    def _open_engine(self) -> None:
        if self._engine_factory is not None:
            self._engine = self._engine_factory(self.artifact)
        elif self.engine_kind == "trt":
            from engines.trt import open_trt_engine

            self._engine = open_trt_engine(self.artifact, precision=self.precision, stream=self._gpu.stream)
        else:
            from engines.base import open_engine

            self._engine = open_engine(self.artifact, backend="ort")

    def _flow_for(self, height: int, width: int, side: int):
        key = (height, width, side)
        if key not in self._flows:
            self._flows[key] = self._flow_factory(self._gpu.context, self._gpu.stream, 1, height, width, self._flow_params, side)
        return self._flows[key]

    def close(self) -> None:
        if self._gpu is None:
            return
        if self._au is not None:
            self._au.close()
            self._au = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        for flow in self._flows.values():
            flow.close()
        self._flows.clear()
        for buffer, _host in self._apex_buffers.values():
            buffer.free()
        self._apex_buffers.clear()
        gpu, self._gpu = self._gpu, None
        gpu.close()

    # -- one interval --------------------------------------------------------------------------------

    def process(self, msg: Message) -> list[Message]:
        if msg.topic not in ("interval", "candidate"):
            return [msg]
        if self._engine is None:
            raise MestreamError("the classify stage was fed before open(); call open() first")
        self._gpu.check_thread()
        scores = score_message(msg, self.options, self.speculated, self._score)  # candidates as on the CPU path
        if scores is None:
            return []
        self.classified += 1
        event = build_event(msg.header, scores.probs, self._classes, self._engine.meta, flow_ms=scores.flow_ms,
                            prep_ms=scores.prep_ms, classify_ms=scores.classify_ms, action_units=au_fields(self._au, scores))
        return [Message("event", event)]

    def _score(self, msg: Message, onset: np.ndarray, apex: np.ndarray) -> Scores:
        driver, stream = self._gpu.driver, self._gpu.stream
        t0 = time.perf_counter_ns()
        start, flow_done, end = driver.Event(), driver.Event(), driver.Event()
        start.record(stream)
        flows = {}
        for kind, spec in self._plan:
            if kind == "flow":
                side = flow_side(tuple(spec.shape))
                if side not in flows:
                    flows[side] = flow = self._flow_for(onset.shape[0], onset.shape[1], side)
                    flow.upload(*(c[None] for c in crops_for_flow(self._engine.meta.flow, onset, apex)))
                    flow.run(1)
        flow_done.record(stream)
        if self.device_inputs:
            pointers = {}
            for kind, spec in self._plan:
                if kind == "flow":
                    pointers[spec.name] = flows[flow_side(tuple(spec.shape))].input_ptr
                else:
                    buffer, host = self._apex_buffers[spec.name]
                    host[...] = Classify._apex_input(msg, tuple(spec.shape), spec.name)
                    driver.memcpy_htod_async(buffer, host, stream)
                    pointers[spec.name] = int(buffer)
            out = self._engine.infer_device(pointers, stream=stream)  # same stream: reads the flow once it is done
            end.record(stream)
            end.synchronize()
            flow_ms, classify_ms = start.time_till(flow_done), flow_done.time_till(end)
        else:
            inputs = {}
            for kind, spec in self._plan:
                shape = tuple(spec.shape)
                if kind == "flow":
                    x = flows[flow_side(shape)].download_input(1)[0]  # (3, S, S); waits for the stream
                    self.downloads += 1
                    # channels last first: _as_input lays (S, S, C) out as either NCHW or NHWC
                    inputs[spec.name] = _as_input(np.moveaxis(x, 0, -1), shape, spec.name)
                else:
                    inputs[spec.name] = Classify._apex_input(msg, shape, spec.name)
            flow_ms = start.time_till(flow_done)
            t1 = time.perf_counter_ns()
            out = self._engine.infer(inputs)
            classify_ms = (time.perf_counter_ns() - t1) / 1e6
        wall_ms = (time.perf_counter_ns() - t0) / 1e6
        probs = np.asarray(out["probs"], dtype=np.float64).reshape(-1)
        if probs.size != len(self._classes):
            raise MestreamError(f"engine gave {probs.size} probabilities for {len(self._classes)} classes; the artifact is inconsistent")
        au_probs, au_ms = None, 0.0
        if self._au is not None:
            # the AU model reads the classifier's flow, copied down once (3 x S x S floats), or makes its own
            shared = flows[self._au.side].download_input(1)[0] if self._au.shares_flow and self._au.side in flows else None
            au_probs, au_ms = self._au.score(onset, apex, shared)
        return Scores(probs, flow_ms=flow_ms, prep_ms=max(0.0, wall_ms - flow_ms - classify_ms), classify_ms=classify_ms,
                      action_units=au_probs, action_units_ms=au_ms)
