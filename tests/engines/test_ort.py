import time

import numpy as np
import pytest
from tiny_artifacts import make_linear_onnx, reference_outputs, tiny_artifact_meta

from engines import default_artifact_path, open_engine
from engines.artifact import TensorInfo
from engines.errors import MestreamError
from engines.ort import OrtEngine


def test_ort_engine_outputs_match_a_numpy_reference(tiny_onnx):
    flow = np.random.default_rng(1).random((1, 3, 28, 28), dtype=np.float32)
    with OrtEngine(tiny_onnx, threads=1) as engine:
        out = engine.infer({"flow": flow})
    logits, probs = reference_outputs(flow)
    np.testing.assert_allclose(out["logits"], logits, atol=1e-4)
    np.testing.assert_allclose(out["probs"], probs, atol=1e-5)
    assert out["probs"].sum() == pytest.approx(1.0, abs=1e-5)


def test_open_engine_picks_onnx_runtime_for_onnx_files(tiny_onnx):
    with open_engine(tiny_onnx) as engine:
        assert isinstance(engine, OrtEngine)
        assert [s.name for s in engine.input_spec()] == ["flow"]
        assert [s.name for s in engine.output_spec()] == ["logits", "probs"]
        assert engine.meta.classes == ("negative", "positive", "surprise")


def test_open_engine_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(MestreamError, match="cannot tell the engine"):
        open_engine(tmp_path / "model.pb")


def test_open_engine_refuses_an_unknown_backend(tiny_onnx):
    with pytest.raises(MestreamError, match="unknown engine backend 'cuda'"):
        open_engine(tiny_onnx, backend="cuda")


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "missing engine input 'flow'"),
        ({"flow": np.zeros((1, 3, 28, 28), np.float32), "apex": np.zeros((1, 1), np.float32)}, "unknown engine input 'apex'"),
        ({"flow": np.zeros((1, 28, 28, 3), np.float32)}, r"'flow': expected shape \[1, 3, 28, 28\], got \[1, 28, 28, 3\]"),
        ({"flow": np.zeros((1, 3, 28, 28), np.float64)}, "'flow': expected dtype float32, got float64"),
        ({"flow": [[0.0]]}, "expected a numpy array, got list"),
    ],
)
def test_mismatched_inputs_are_refused_in_one_line_naming_expected_and_got(tiny_onnx, inputs, message):
    with OrtEngine(tiny_onnx) as engine, pytest.raises(MestreamError, match=message) as info:
        engine.infer(inputs)
    assert "\n" not in str(info.value)


def test_a_non_contiguous_input_is_accepted(tiny_onnx):
    flow = np.asfortranarray(np.random.default_rng(2).random((1, 3, 28, 28), dtype=np.float32))
    with OrtEngine(tiny_onnx) as engine:
        np.testing.assert_allclose(engine.infer({"flow": flow})["logits"], reference_outputs(flow)[0], atol=1e-4)


def test_a_closed_engine_says_so(tiny_onnx):
    engine = OrtEngine(tiny_onnx)
    engine.close()
    with pytest.raises(MestreamError, match="is closed"):
        engine.infer({"flow": np.zeros((1, 3, 28, 28), np.float32)})


def test_metadata_that_disagrees_with_the_graph_is_refused_at_open(tmp_path):
    meta = tiny_artifact_meta()
    wrong = type(meta)(**{**meta.__dict__, "inputs": (TensorInfo("flow", (1, 3, 32, 32), "float32"),)})
    path = make_linear_onnx(tmp_path / "liar.onnx", wrong)
    with pytest.raises(MestreamError, match=r"'flow' is float32 \[1, 3, 28, 28\] in the graph but float32 \[1, 3, 32, 32\]"):
        OrtEngine(path)


def test_metadata_naming_an_input_the_graph_lacks_is_refused(tmp_path):
    meta = tiny_artifact_meta()
    wrong = type(meta)(**{**meta.__dict__, "inputs": (TensorInfo("apex", (1, 1, 28, 28), "float32"),)})
    with pytest.raises(MestreamError, match="declares input 'apex'"):
        OrtEngine(make_linear_onnx(tmp_path / "liar.onnx", wrong))


def test_bench_engine_times_an_artifact_and_prints_percentiles(tiny_onnx, capsys):
    from edge.cli import main

    assert main(["bench-engine", "--artifact", str(tiny_onnx), "-n", "50", "--warmup", "5"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "ort" in out and "p50" in out and "infer/s" in out


def test_bench_engine_refuses_a_zero_iteration_count(tiny_onnx):
    from edge.cli import main

    assert main(["bench-engine", "--artifact", str(tiny_onnx), "-n", "0"]) == 2


def test_bench_engine_refuses_negative_threads_and_a_precision_onnx_runtime_would_ignore(tiny_onnx, capsys):
    from edge.cli import main

    assert main(["bench-engine", "--artifact", str(tiny_onnx), "--threads", "-2"]) == 2
    assert "--threads -2" in capsys.readouterr().err
    assert main(["bench-engine", "--artifact", str(tiny_onnx), "--precision", "int8"]) == 2
    assert "--backend trt" in capsys.readouterr().err



def test_by_default_the_engine_leaves_no_thread_spinning_after_a_run():
    # ONNX Runtime's own pool (threads=None) spins about 35 ms after every run: a core the other stages
    # lose for each event. The default engine runs on the caller's thread and is idle between runs.
    with OrtEngine(default_artifact_path()) as engine:
        x = {s.name: np.zeros(s.shape, np.float32) for s in engine.input_spec()}
        engine.infer(x)
        time.sleep(0.2)
        cpu = time.process_time()
        engine.infer(x)
        time.sleep(0.1)
        cpu_ms = (time.process_time() - cpu) * 1e3
    assert cpu_ms < 10, f"{cpu_ms:.1f} ms of CPU over a 0.1 s pause after one run: a thread is spinning"
