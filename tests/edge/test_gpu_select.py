"""Where infer runs: `device = "auto" | "gpu" | "cpu"`, the once-only log line, the refusal, the one context.

None of this needs a GPU: the probe result and the pycuda driver are stand-ins where a GPU would be.
"""

import logging
import threading

import cv2
import numpy as np
import pytest

from edge import gpu
from edge.cli import main as mestream
from edge.gpu import DeviceChoice, GpuProbe, announce, choose_device, open_process_gpu, probe_gpu
from edge.stages.classify_gpu import InferOnDevice, build_classify
from edge.topology import load_topology, parse_topology
from engines.errors import MestreamError

H100 = GpuProbe(True, True, name="NVIDIA H100", compute_capability=(9, 0))
NO_TRT = GpuProbe(True, False, name="NVIDIA H100", compute_capability=(9, 0), reason="TensorRT is not installed")
NO_GPU = GpuProbe(False, False, reason="pycuda is not installed (the [gpu] extra)")


def test_auto_takes_the_gpu_with_tensorrt_where_both_are_present():
    assert choose_device("auto", H100) == DeviceChoice("gpu", "trt", "NVIDIA H100 with TensorRT")


def test_auto_takes_the_cpu_path_without_a_gpu_or_without_tensorrt_and_says_why():
    assert choose_device("auto", NO_GPU) == DeviceChoice("cpu", "ort", NO_GPU.reason)
    choice = choose_device("auto", NO_TRT)
    assert choice.device == "cpu" and "TensorRT is not installed" in choice.reason


def test_gpu_requested_where_none_exists_is_refused_in_one_line_naming_the_fix():
    with pytest.raises(MestreamError) as err:
        choose_device("gpu", NO_GPU)
    message = str(err.value)
    assert "\n" not in message and 'device = "gpu"' in message and "pycuda is not installed" in message
    assert '"auto" or "cpu"' in message


def test_gpu_requested_without_tensorrt_runs_the_flow_on_the_gpu_and_onnx_runtime_after_it():
    choice = choose_device("gpu", NO_TRT)
    assert (choice.device, choice.engine) == ("gpu", "ort") and "TensorRT is not installed" in choice.reason


def test_cpu_is_taken_even_where_a_gpu_and_tensorrt_exist():
    assert choose_device("cpu", H100).device == "cpu"


def test_an_unknown_device_name_is_refused():
    with pytest.raises(MestreamError, match="'tpu': expected one of 'auto', 'gpu', 'cpu'"):
        choose_device("tpu", H100)


def _topology_with(stage_table: dict) -> dict:
    return {"process": [{"name": "capture", "stages": ["capture"]}, {"name": "infer", "stages": ["classify", "publish"]}],
            "stages": stage_table}


def test_the_topology_checks_the_device_key_of_the_infer_stage():
    topo = parse_topology(_topology_with({"classify": {"device": "gpu"}}))
    assert topo.stage_options["classify"]["device"] == "gpu"
    with pytest.raises(MestreamError, match=r"\[stages.classify\] device = 'tpu': expected one of"):
        parse_topology(_topology_with({"classify": {"device": "tpu"}}))
    with pytest.raises(MestreamError, match=r"\[stages.capture\] device = 'gpu': only \['classify'\] can run on a GPU"):
        parse_topology(_topology_with({"capture": {"device": "gpu"}}))


def test_the_default_topology_leaves_the_choice_to_auto():
    topo = load_topology()
    stage = build_classify("model.onnx", topo.stage_options.get("classify", {}), probe_fn=lambda: NO_GPU)
    assert stage.device.device == "auto" and stage.device.precision == "fp32"


def test_building_the_stage_refuses_gpu_at_start_and_bad_options_in_one_line():
    with pytest.raises(MestreamError, match='device = "gpu" but no GPU can be used here'):
        build_classify("model.onnx", {"device": "gpu"}, probe_fn=lambda: NO_GPU)
    with pytest.raises(MestreamError, match="precision = 'fp8': expected one of fp32, fp16, int8"):
        build_classify("model.onnx", {"precision": "fp8"}, probe_fn=lambda: NO_GPU)
    with pytest.raises(MestreamError, match="unknown key 'batch'"):
        build_classify("model.onnx", {"batch": 4}, probe_fn=lambda: NO_GPU)
    stage = build_classify("model.onnx", {"device": "gpu", "min_score": 1.5}, probe_fn=lambda: H100)
    assert stage.options.min_score == 1.5 and stage.device.device == "gpu"


def test_cpu_never_probes_the_gpu():
    def probe():
        raise AssertionError("probed")

    stage = build_classify("model.onnx", {"device": "cpu"}, probe_fn=probe)
    opened = []
    stage._cpu_factory = lambda artifact, options: type("Cpu", (), {"open": lambda self: opened.append(1), "close": lambda self: None})()
    stage.open()
    assert stage.path == "cpu" and opened == [1]


def test_the_choice_is_said_once_in_the_log_however_often_the_stage_opens(caplog):
    reason = "pycuda is not installed (test_the_choice_is_said_once)"
    opened = []

    class Cpu:
        def __init__(self, artifact, options):
            pass

        def open(self):
            opened.append(1)

        def close(self):
            pass

    caplog.set_level(logging.INFO, logger="edge.gpu")
    for _ in range(3):
        stage = InferOnDevice("model.onnx", probe_fn=lambda: GpuProbe(False, False, reason=reason), cpu_factory=Cpu)
        stage.open()
        stage.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.gpu"]
    assert lines == [f"no GPU found ({reason}), using the CPU path"] and len(opened) == 3
    assert announce(DeviceChoice("cpu", "ort", reason)) is False


def test_auto_falls_back_to_the_cpu_path_with_a_warning_when_the_gpu_path_cannot_open(caplog):
    class BrokenGpu:
        def __init__(self, artifact, **kwargs):
            pass

        def open(self):
            raise MestreamError("TensorRT could not build the engine")

    class Cpu:
        def __init__(self, artifact, options):
            self.opened = False

        def open(self):
            self.opened = True

    stage = InferOnDevice("model.onnx", probe_fn=lambda: H100, cpu_factory=Cpu, gpu_factory=BrokenGpu)
    with caplog.at_level(logging.WARNING, logger="edge.stages.classify_gpu"):
        stage.open()
    assert stage.path == "cpu" and stage.stage.opened
    assert "the GPU path could not open (TensorRT could not build the engine); using the CPU path" in caplog.text
    from edge.stages.classify_gpu import DeviceOptions

    strict = InferOnDevice("model.onnx", device=DeviceOptions("gpu"), probe_fn=lambda: H100, cpu_factory=Cpu, gpu_factory=BrokenGpu)
    with pytest.raises(MestreamError, match="could not build"):
        strict.open()


def test_the_probe_on_this_machine_never_raises_and_says_what_is_missing():
    probe = probe_gpu()
    assert isinstance(probe, GpuProbe)
    if not probe.cuda:
        assert probe.reason and "\n" not in probe.reason


def _fake_pycuda(count=1, init_error=None):
    calls = []

    class Error(Exception):
        pass

    class Context:
        @staticmethod
        def pop():
            calls.append("pop")

    class PrimaryContext:
        def push(self):
            calls.append("push")

        def detach(self):
            calls.append("detach")

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return count

        def name(self):
            return "Fake GPU"

        def compute_capability(self):
            return (8, 7)

        def retain_primary_context(self):
            calls.append("retain")
            return PrimaryContext()

    class Stream:
        def synchronize(self):
            calls.append("sync")

    class Driver:
        pass

    def init():
        if init_error:
            raise Error(init_error)

    driver = Driver()
    driver.Error, driver.Context, driver.Device, driver.Stream, driver.init = Error, Context, Device, Stream, init
    driver.calls = calls
    return driver


def test_a_driver_that_cannot_start_or_sees_no_device_means_no_gpu():
    probe = probe_gpu(driver=_fake_pycuda(init_error="cuInit failed: no CUDA-capable device is detected"))
    assert not probe.cuda and "cuInit failed" in probe.reason
    probe = probe_gpu(driver=_fake_pycuda(count=0))
    assert not probe.cuda and "sees 0 device(s)" in probe.reason
    probe = probe_gpu(driver=_fake_pycuda())
    assert probe.cuda and probe.name == "Fake GPU" and probe.compute_capability == (8, 7)


def test_the_process_has_one_context_made_current_in_the_opening_thread():
    driver = _fake_pycuda()
    first = open_process_gpu(driver=driver)
    try:
        second = open_process_gpu(driver=_fake_pycuda())  # a second caller shares it: no second context
        assert second is first and first.users == 2 and driver.calls == ["retain", "push"]
        second.close()
        assert driver.calls == ["retain", "push"]  # still in use by the first caller
        errors = []

        def elsewhere():
            try:
                open_process_gpu(driver=driver)
            except MestreamError as exc:
                errors.append(str(exc))

        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        assert len(errors) == 1 and "pycuda contexts are per thread" in errors[0]
    finally:
        first.close()
    assert driver.calls == ["retain", "push", "sync", "pop", "detach"]
    assert gpu._process_gpu is None


def test_mestream_run_with_device_gpu_where_none_exists_exits_with_one_line_before_starting(tmp_path, capsys):
    if probe_gpu().cuda:
        pytest.skip("this machine has a usable GPU: the refusal cannot happen here")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    topology = tmp_path / "topology.toml"
    topology.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n\n[[process]]\nname = "infer"\n'
                        'stages = ["classify", "publish"]\n\n[stages.classify]\ndevice = "gpu"\n')
    code = mestream(["run", "--source", str(video), "--topology", str(topology), "--fast"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert err[0].startswith("mestream run: error: topology [stages.classify] device = \"gpu\" but no GPU can be used here")
