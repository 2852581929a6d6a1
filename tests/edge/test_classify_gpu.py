"""The GPU infer path: flow kernels' device memory straight into the engine, and the same event as the CPU path.

The plumbing tests run anywhere, with stand-ins for the GPU context, the CUDA flow and the engine. The tests
marked gpu run the real CUDA TV-L1 in the process's context (pycuda + an NVIDIA GPU); the trt one needs
TensorRT 10 too. Each is skipped with its reason where that is missing.
"""

import threading

import cv2
import numpy as np
import pytest
from cuda_here import cuda_or_skip
from stand_ins import FakeEngine, ListSource, artifact_for_tests, fake_flow, interval

from edge.messages import Message
from edge.process import RunOptions
from edge.stages.base import run_chain
from edge.stages.classify import Classify, ClassifyOptions
from edge.stages.classify_gpu import ClassifyGpu, InferOnDevice
from edge.stages.registry import build_stage
from edge.tools.bench_flow import centre_squares
from engines.errors import MestreamError

# ---- stand-ins --------------------------------------------------------------------------------------

class FakeDriver:
    """Device memory as a dict from address to array; events that time nothing."""

    def __init__(self):
        self.memory = {}
        self._next = 0x10000

    def address(self):
        self._next += 0x1000
        return self._next

    def Event(self):
        return FakeEvent()

    def pagelocked_empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def mem_alloc(self, nbytes):
        return FakeBuffer(self.address())

    def memcpy_htod_async(self, dst, src, stream):
        self.memory[int(dst)] = np.array(src)


class FakeBuffer:
    def __init__(self, address):
        self.address, self.freed = address, False

    def __int__(self):
        return self.address

    def free(self):
        self.freed = True


class FakeEvent:
    def record(self, stream):
        pass

    def synchronize(self):
        pass

    def time_till(self, other):
        return 0.25


class FakeGpu:
    def __init__(self):
        self.driver = FakeDriver()
        self.context, self.stream, self.name = "context", "stream", "Fake GPU"
        self.closed = False

    def check_thread(self):
        pass

    def close(self):
        self.closed = True


class FakeCudaFlow:
    """CudaTVL1's surface: the (1, 3, S, S) input lands in 'device memory' at input_ptr."""

    def __init__(self, driver, context, stream, batch, height, width, params, size):
        self.driver, self.size, self.shape = driver, size, (height, width)
        self.input_ptr = driver.address()
        self.downloads = 0
        self.closed = False

    def upload(self, prev, nxt):
        assert prev.shape == (1, *self.shape) and nxt.shape == prev.shape
        self.pair = (prev[0], nxt[0])

    def run(self, n):
        flow = fake_flow(*self.pair, None, size=self.size)  # (S, S, 3), like the CPU stand-in
        self.driver.memory[self.input_ptr] = np.ascontiguousarray(np.moveaxis(flow, -1, 0)[None], dtype=np.float32)

    def download_input(self, n):
        self.downloads += 1
        return self.driver.memory[self.input_ptr][:n].copy()

    def close(self):
        self.closed = True


class DeviceFakeEngine(FakeEngine):
    """FakeEngine that also reads its input from device memory, as TrtEngine.infer_device does."""

    def __init__(self, driver, **kwargs):
        super().__init__(**kwargs)
        self.driver, self.device_calls = driver, []

    def infer_device(self, pointers, stream=None):
        self.device_calls.append((dict(pointers), stream))
        return self.infer({name: self.driver.memory[ptr] for name, ptr in pointers.items()})


def _gpu_stage(engine_cls=DeviceFakeEngine, action_units="off", **engine_kwargs):
    gpu = FakeGpu()
    flows = []
    engine = engine_cls(gpu.driver, **engine_kwargs) if engine_cls is DeviceFakeEngine else engine_cls(**engine_kwargs)

    def flow_factory(*args):
        flows.append(FakeCudaFlow(gpu.driver, *args))
        return flows[-1]

    stage = ClassifyGpu("fake.onnx", options=ClassifyOptions(action_units=action_units), gpu_factory=lambda index: gpu,
                        engine_factory=lambda path: engine, flow_factory=flow_factory, crop_side=64)
    return stage, gpu, engine, flows


def _without_latency(event):
    return {k: v for k, v in event.header.items() if k != "latency_ms"}


def _cpu_events(messages, action_units="off", engine_factory=None, flow_fn=fake_flow, **engine_kwargs):
    stage = Classify("fake.onnx", options=ClassifyOptions(action_units=action_units),
                     engine_factory=engine_factory or (lambda path: FakeEngine(**engine_kwargs)), flow_fn=flow_fn)
    return run_chain(ListSource(messages), [stage])


# ---- plumbing (no GPU needed) ----------------------------------------------------------------------

def test_the_engine_reads_the_flow_kernels_device_memory_on_the_same_stream_with_no_host_copy():
    stage, gpu, engine, flows = _gpu_stage()
    events = run_chain(ListSource([interval(10), interval(40, brighter=-40)]), [stage])
    assert [e.topic for e in events] == ["event", "event"]
    assert len(flows) == 1 and flows[0].downloads == 0 and stage.downloads == 0
    assert [call for call in engine.device_calls] == [({"flow": flows[0].input_ptr}, "stream")] * 2
    assert engine.closed and flows[0].closed and gpu.closed


def test_the_gpu_path_publishes_the_same_event_as_the_cpu_path():
    messages = [interval(10), interval(40, brighter=-40, kind="macro")]
    stage, *_ = _gpu_stage()
    gpu_events = run_chain(ListSource(messages), [stage])
    cpu_events = _cpu_events(messages)
    assert [_without_latency(e) for e in gpu_events] == [_without_latency(e) for e in cpu_events]
    assert [e.header["label"] for e in gpu_events] == ["positive", "surprise"]
    for event in gpu_events:
        assert set(event.header["latency_ms"]) == {"capture", "track", "flow", "prepare", "classify"}
        assert event.header["latency_ms"]["flow"] == 0.25  # CUDA-event time, not host time


def test_an_artifact_declaring_a_crop_window_gets_the_re_cut_crops_on_the_gpu_path_too():
    from dataclasses import replace

    from edge.perception.composite_framing import COMPOSITE_WINDOW, reframe

    stage, gpu, engine, flows = _gpu_stage()
    engine.meta = replace(engine.meta, flow={"params": {}, "crop_window": list(COMPOSITE_WINDOW)})
    message = interval(10)
    run_chain(ListSource([message]), [stage])
    assert np.array_equal(flows[0].pair[0], reframe(message.arrays["onset"]))
    assert np.array_equal(flows[0].pair[1], reframe(message.arrays["apex"]))


def test_an_engine_that_only_reads_host_memory_gets_one_host_copy_of_the_input():
    stage, gpu, engine, flows = _gpu_stage(FakeEngine)
    [event] = run_chain(ListSource([interval(10)]), [stage])
    assert flows[0].downloads == 1 and stage.downloads == 1
    assert _without_latency(event) == _without_latency(_cpu_events([interval(10)])[0])


def test_a_channels_last_artifact_is_fed_through_a_host_copy_in_its_own_layout():
    stage, gpu, engine, flows = _gpu_stage(shape=(1, 28, 28, 3))
    [event] = run_chain(ListSource([interval(10)]), [stage])
    assert engine.device_calls == [] and engine.calls[0].shape == (1, 28, 28, 3) and stage.downloads == 1
    assert _without_latency(event) == _without_latency(_cpu_events([interval(10)], shape=(1, 28, 28, 3))[0])


def test_a_crop_of_another_size_gets_its_own_flow_buffers_once():
    stage, gpu, engine, flows = _gpu_stage()
    small = interval(0)
    big = Message("interval", dict(small.header), {k: cv2.resize(v, (96, 96)) for k, v in small.arrays.items()})
    run_chain(ListSource([small, big, big]), [stage])
    assert [f.shape for f in flows] == [(64, 64), (96, 96)]


def test_the_au_model_reads_the_classifiers_flow_copied_down_once_and_publishes_what_the_cpu_path_does():
    from dataclasses import replace

    from engines import default_au_artifact_path
    from engines.artifact import read_artifact

    alike = read_artifact(default_au_artifact_path()).flow  # the classifier's flow made as the AU model's
    messages = [interval(10), interval(40, brighter=-40)]
    stage, gpu, engine, flows = _gpu_stage(action_units="default")
    engine.meta = replace(engine.meta, flow=alike)
    gpu_events = run_chain(ListSource(messages), [stage])
    cpu_engine = FakeEngine()
    cpu_engine.meta = replace(cpu_engine.meta, flow=alike)
    from edge.stages.classify_input import crops_for_flow

    def framed_fake_flow(onset, apex, params, size=28):  # the CPU path cuts the crops as the GPU path does
        return fake_flow(*crops_for_flow(alike, onset, apex), params, size)

    cpu_events = _cpu_events(messages, action_units="default", engine_factory=lambda path: cpu_engine,
                             flow_fn=framed_fake_flow)
    assert [_without_latency(e) for e in gpu_events] == [_without_latency(e) for e in cpu_events]
    assert "AU4" in gpu_events[0].header["action_units"] and flows[0].downloads == 2 and stage.downloads == 0


def test_intervals_below_min_score_other_topics_and_missing_crops_behave_as_on_the_cpu_path():
    stage, gpu, engine, flows = _gpu_stage()
    stage.options = ClassifyOptions(min_score=3.0)
    status = Message("status", {"stage": "track", "event": "face_lost"})
    assert run_chain(ListSource([status, interval(0)]), [stage]) == [status]
    stage, *_ = _gpu_stage()
    broken = interval(0)
    broken.arrays.pop("apex")
    with pytest.raises(MestreamError, match="lacks its onset/apex"):
        run_chain(ListSource([broken]), [stage])


def test_a_failure_while_opening_releases_the_gpu_context():
    gpu = FakeGpu()

    def engine_factory(path):
        raise MestreamError("artifact broken")

    stage = ClassifyGpu("fake.onnx", gpu_factory=lambda index: gpu, engine_factory=engine_factory)
    with pytest.raises(MestreamError, match="artifact broken"):
        stage.open()
    assert gpu.closed


# ---- the CPU path is unchanged ---------------------------------------------------------------------

def _textured_pair(seed=0, size=128, lift=1.5):
    """A smooth random texture and the same with a local upward motion (a brow raise of `lift` px)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.5)
    base = cv2.normalize(base, None, 30, 220, cv2.NORM_MINMAX)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    bump = lift * np.exp(-((xx - 0.3 * size) ** 2 + (yy - 0.35 * size) ** 2) / (2 * (0.1 * size) ** 2))
    apex = cv2.remap(base, xx, yy + bump.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.round(base).astype(np.uint8), np.round(apex).astype(np.uint8)


def _interval_of(onset, apex, seq=100):
    base = interval(seq)
    return Message("interval", base.header, {"onset": onset, "apex": apex})


def test_the_classify_stage_without_a_gpu_runs_the_unchanged_cpu_path(tmp_path):
    from edge.gpu import probe_gpu

    if probe_gpu().cuda and probe_gpu().tensorrt:
        pytest.skip("this machine has a GPU with TensorRT: auto takes the GPU path here")
    artifact = artifact_for_tests(tmp_path)
    messages = [_interval_of(*_textured_pair(seed)) for seed in (1, 2)]
    run = RunOptions(source="unused", artifact=str(artifact))
    for table in ({}, {"device": "auto"}, {"device": "cpu"}):
        stage = build_stage("classify", dict(table), run)
        got = run_chain(ListSource(messages), [stage])
        assert isinstance(stage, InferOnDevice) and stage.path == "cpu" and stage.classified == len(messages)
        want = run_chain(ListSource(messages), [Classify(artifact)])
        assert [_without_latency(e) for e in got] == [_without_latency(e) for e in want]


# ---- on a real GPU -----------------------------------------------------------------------------------

def _cuda_or_skip():
    return cuda_or_skip("the GPU infer path needs it")


class DeviceReadingOrt:
    """ONNX Runtime behind TrtEngine's infer_device: it copies each input from the device address on the
    given stream (so it waits for the flow kernels queued before it) and classifies it. The real consumer
    of the flow kernels' pointer where TensorRT is missing."""

    def __init__(self, artifact):
        import pycuda.driver as cuda

        from engines.base import open_engine

        self._cuda = cuda
        self._ort = open_engine(artifact, backend="ort")
        self.meta = self._ort.meta
        self.pointers_seen = []

    def input_spec(self):
        return self._ort.input_spec()

    def infer_device(self, pointers, stream=None):
        host = {}
        for spec in self.meta.inputs:
            host[spec.name] = self._cuda.pagelocked_empty(tuple(spec.shape), np.float32)
            self._cuda.memcpy_dtoh_async(host[spec.name], pointers[spec.name], stream)
            self.pointers_seen.append(pointers[spec.name])
        stream.synchronize()
        return self._ort.infer({k: np.array(v) for k, v in host.items()})

    def close(self):
        self._ort.close()


def _crops(assets=None):
    """Textured synthetic pairs, and real aligned-size face crops from the CASME II clip when assets exist."""
    pairs = [_textured_pair(seed) for seed in (1, 2, 3)]
    if assets is not None:
        video = assets / "videos" / "casme2_sub01_EP02_01f.avi"
        if video.is_file():
            frames = centre_squares(video, 40, 128)
            pairs += [(frames[i], frames[i + 12]) for i in range(0, len(frames) - 12, 13)]
    return [_interval_of(onset, apex, seq=100 + 20 * i) for i, (onset, apex) in enumerate(pairs)]


def _assert_same_events(gpu_events, cpu_events, atol=0.02):
    assert len(gpu_events) == len(cpu_events)
    for g, c in zip(gpu_events, cpu_events):
        gh, ch = _without_latency(g), _without_latency(c)
        gp, cp = gh.pop("probabilities"), ch.pop("probabilities")
        # action units: the same units, probabilities as close as the classes' (one near its threshold may flip)
        ga, ca = gh.pop("action_units", {}), ch.pop("action_units", {})
        gh.pop("action_units_active", None), ch.pop("action_units_active", None)
        assert gh == ch  # label, frames, box, model: identical
        assert gp.keys() == cp.keys() and max(abs(gp[k] - cp[k]) for k in gp) <= atol, (gp, cp)
        assert ga.keys() == ca.keys() and all(abs(ga[k] - ca[k]) <= atol for k in ga), (ga, ca)


@pytest.fixture
def gpu_or_skip():
    _cuda_or_skip()


@pytest.fixture
def interval_crops(request):
    """Synthetic pairs, plus real face crops where MESTREAM_ASSETS is set (the GPU tests run without it too)."""
    try:
        assets = request.getfixturevalue("assets")
    except pytest.skip.Exception:
        assets = None
    return _crops(assets)


@pytest.mark.gpu
def test_cuda_flow_in_the_process_context_feeds_a_device_pointer_consumer_like_the_cpu_path(gpu_or_skip, tmp_path, interval_crops):
    artifact = artifact_for_tests(tmp_path)
    messages = interval_crops
    consumer = []

    def engine_factory(path):
        consumer.append(DeviceReadingOrt(path))
        return consumer[0]

    stage = ClassifyGpu(artifact, engine_factory=engine_factory)
    gpu_events = run_chain(ListSource(messages), [stage])
    assert stage.downloads == 0 and len(consumer[0].pointers_seen) == len(messages)
    assert len(set(consumer[0].pointers_seen)) == 1  # the one input buffer of the flow kernels, reused
    _assert_same_events(gpu_events, run_chain(ListSource(messages), [Classify(artifact)]))


@pytest.mark.gpu
def test_gpu_flow_with_onnx_runtime_on_the_downloaded_input_equals_the_cpu_path(gpu_or_skip, tmp_path, interval_crops):
    artifact = artifact_for_tests(tmp_path)
    messages = interval_crops
    stage = ClassifyGpu(artifact, engine="ort")
    gpu_events = run_chain(ListSource(messages), [stage])
    assert stage.downloads == len(messages)
    _assert_same_events(gpu_events, run_chain(ListSource(messages), [Classify(artifact)]))
    for event in gpu_events:
        assert 0 < event.header["latency_ms"]["flow"] < 1000


@pytest.mark.gpu
def test_explicit_gpu_device_opens_the_gpu_path_in_the_infer_process(gpu_or_skip, tmp_path):
    artifact = artifact_for_tests(tmp_path)
    stage = build_stage("classify", {"device": "gpu"}, RunOptions(source="unused", artifact=str(artifact)))
    [event] = run_chain(ListSource([_interval_of(*_textured_pair(4))]), [stage])
    assert event.topic == "event" and stage.classified == 1


@pytest.mark.gpu
def test_the_stage_refuses_to_be_fed_from_another_thread_than_the_one_that_opened_it(gpu_or_skip, tmp_path):
    stage = ClassifyGpu(artifact_for_tests(tmp_path), engine="ort")
    stage.open()
    errors = []
    try:
        def feed():
            try:
                stage.process(_interval_of(*_textured_pair(5)))
            except MestreamError as exc:
                errors.append(str(exc))

        worker = threading.Thread(target=feed)
        worker.start()
        worker.join()
    finally:
        stage.close()
    assert len(errors) == 1 and "pycuda contexts are per thread" in errors[0]


@pytest.mark.gpu
@pytest.mark.trt
def test_tensorrt_on_the_flow_kernels_memory_gives_the_cpu_paths_event(gpu_or_skip, tmp_path, interval_crops, monkeypatch):
    pytest.importorskip("tensorrt", reason="TensorRT 10 is not installed: the TensorRT half of the GPU path cannot run here")
    monkeypatch.setenv("MESTREAM_ENGINE_CACHE", str(tmp_path / "plans"))
    artifact = artifact_for_tests(tmp_path)
    messages = interval_crops
    stage = ClassifyGpu(artifact, engine="trt", precision="fp32")
    gpu_events = run_chain(ListSource(messages), [stage])
    assert stage.downloads == 0
    _assert_same_events(gpu_events, run_chain(ListSource(messages), [Classify(artifact)]))
