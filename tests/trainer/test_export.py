import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")
onnx = pytest.importorskip("onnx", reason="onnx comes with the [train] extra")

from engines.artifact import Artifact, TensorInfo, read_artifact  # noqa: E402
from engines.errors import MestreamError  # noqa: E402
from engines.onnx_ops import unsupported_ops  # noqa: E402
from engines.ort import OrtEngine  # noqa: E402
from trainer.export import export_checkpoint, export_model, graph_sha256  # noqa: E402
from trainer.models.base import Family, InputSpec, Recipe  # noqa: E402
from trainer.models.registry import FAMILIES, get_family  # noqa: E402

CLASSES = ["negative", "positive", "surprise"]


class TinyTwoStream(torch.nn.Module):
    """Flow + apex, like the fusion families: conv, batch norm, pooling, layer norm, concat, linear."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.flow = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
        )
        self.apex = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
        self.norm = torch.nn.LayerNorm(4 * 14 * 14 + 2)
        self.head = torch.nn.Linear(4 * 14 * 14 + 2, num_classes)

    def forward(self, flow, apex):
        features = torch.cat([self.flow(flow).flatten(1), self.apex(apex).flatten(1)], dim=1)
        return self.head(self.norm(features))


def _build(num_classes: int):
    torch.manual_seed(0)
    model = TinyTwoStream(num_classes)
    with torch.no_grad():  # non-trivial batch-norm statistics so eval mode really matters
        model.flow[1].running_mean.uniform_(-0.5, 0.5)
        model.flow[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


TINY = Family(
    name="tiny",
    summary="test fixture: two small streams",
    inputs=(
        InputSpec("flow", (3, 28, 28), "onset->apex u, v, strain, min-max [0,1]"),
        InputSpec("apex", (1, 64, 64), "apex crop, grey, [0,1]"),
    ),
    recipe=Recipe(epochs=1, lr=1e-3, batch_size=8),
    build=_build,
)


def _checkpoint(path: Path, **overrides) -> Path:
    model = _build(3)
    ckpt = {
        "family": "tiny",
        "num_classes": 3,
        "state_dict": model.state_dict(),
        "classes": CLASSES,
        "inputs": [{"name": s.name, "shape": list(s.shape), "meaning": s.meaning} for s in TINY.inputs],
        "recipe": {"epochs": 1},
        "seed": 1,
        "training": {"dataset": "megc2019", "samples": 442, "subjects": 68, "fit_all": True},
        "protocol": "loso",
        "scores": {"parts": {"full": {"uf1": 0.71, "uar": 0.72, "acc": 0.73}}},
        "selection": "fixed recipe, no epoch selection",
    }
    ckpt.update(overrides)
    torch.save(ckpt, path)
    return path


@pytest.fixture
def tiny_family(monkeypatch):
    registry = importlib.import_module("trainer.models.registry")
    real = registry.get_family
    monkeypatch.setattr(registry, "get_family", lambda name: TINY if name == "tiny" else real(name))
    return TINY


def test_export_writes_a_checked_artifact_whose_outputs_match_torch(tmp_path, tiny_family):
    out = tmp_path / "tiny.onnx"
    artifact = export_checkpoint(_checkpoint(tmp_path / "model.pt"), out)
    assert out.is_file() and artifact.path == out
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert unsupported_ops(model) == []
    assert [i.name for i in model.graph.input] == ["flow", "apex"]
    assert [o.name for o in model.graph.output] == ["logits", "probs"]

    torch_model = _build(3)
    rng = np.random.default_rng(7)
    with OrtEngine(out) as engine:
        for _ in range(5):
            flow = rng.random((1, 3, 28, 28), dtype=np.float32)
            apex = rng.random((1, 1, 64, 64), dtype=np.float32)
            got = engine.infer({"flow": flow, "apex": apex})
            with torch.no_grad():
                logits = torch_model(torch.from_numpy(flow), torch.from_numpy(apex))
            np.testing.assert_allclose(got["logits"], logits.numpy(), atol=1e-4)
            np.testing.assert_allclose(got["probs"], torch.softmax(logits, 1).numpy(), atol=1e-4)


def test_exported_metadata_describes_the_model(tmp_path, tiny_family):
    out = tmp_path / "tiny.onnx"
    export_checkpoint(_checkpoint(tmp_path / "model.pt"), out)
    meta = read_artifact(out)
    assert meta.family == "tiny"
    assert meta.model_id == graph_sha256(onnx.load(str(out))) and len(meta.model_id) == 64
    assert [(i.name, i.shape, i.dtype) for i in meta.inputs] == [("flow", (1, 3, 28, 28), "float32"), ("apex", (1, 1, 64, 64), "float32")]
    assert meta.inputs[0].meaning.startswith("onset->apex")
    assert [(o.name, o.shape) for o in meta.outputs] == [("logits", (1, 3)), ("probs", (1, 3))]
    assert meta.classes == tuple(CLASSES)
    assert meta.flow["algorithm"].startswith("tvl1") and "28x28" in meta.flow["form"]
    assert meta.training == {"dataset": "megc2019", "samples": 442, "subjects": 68, "fit_all": True}
    assert meta.protocol == "loso" and meta.scores["parts"]["full"]["uf1"] == 0.71
    assert meta.selection.startswith("fixed recipe")
    assert meta.versions["opset"] == 17 and meta.versions["torch"] == torch.__version__
    assert meta.created.endswith("Z")


def test_the_model_id_ignores_metadata_but_not_weights(tmp_path, tiny_family):
    a = export_checkpoint(_checkpoint(tmp_path / "a.pt"), tmp_path / "a.onnx")
    b = export_checkpoint(_checkpoint(tmp_path / "b.pt", scores={"parts": {}}), tmp_path / "b.onnx")
    assert a.model_id == b.model_id  # same weights, different report: same model
    other = _build(3).state_dict()
    other["head.bias"] = other["head.bias"] + 1.0
    c = export_checkpoint(_checkpoint(tmp_path / "c.pt", state_dict=other), tmp_path / "c.onnx")
    assert c.model_id != a.model_id


def test_flow_parameters_come_from_the_runtime_flow_module_and_rebuild_its_params(tmp_path, tiny_family):
    from edge.perception import flow

    export_checkpoint(_checkpoint(tmp_path / "model.pt"), tmp_path / "t.onnx")
    meta = read_artifact(tmp_path / "t.onnx")
    assert flow.TVL1Params(**meta.flow["params"]) == flow.TVL1Params()  # what the classify stage does
    assert meta.flow["form"] == flow.FLOW_FORM


def test_a_checkpoint_trained_on_the_composites_framing_is_exported_declaring_its_crop_window(tmp_path, tiny_family):
    from edge.perception import flow
    from edge.perception.composite_framing import COMPOSITE_WINDOW, FRAMED_FLOW_FORM

    ckpt = _checkpoint(tmp_path / "model.pt", crop_window=list(COMPOSITE_WINDOW))  # as `mestream train` records it
    export_checkpoint(ckpt, tmp_path / "t.onnx")
    meta = read_artifact(tmp_path / "t.onnx")
    assert meta.flow["crop_window"] == list(COMPOSITE_WINDOW) and meta.flow["form"] == FRAMED_FLOW_FORM
    assert meta.input("flow").normalisation == FRAMED_FLOW_FORM and flow.TVL1Params(**meta.flow["params"]) == flow.TVL1Params()
    export_checkpoint(_checkpoint(tmp_path / "plain.pt", crop_window=None), tmp_path / "p.onnx")
    assert "crop_window" not in read_artifact(tmp_path / "p.onnx").flow  # crops as they come


def test_an_unsupported_operator_refuses_the_export_and_writes_nothing(tmp_path):
    class UsesDet(torch.nn.Module):
        def forward(self, flow):  # Det has no TensorRT importer
            return flow.flatten(1)[:, :3] * torch.det(flow[:, 0, :2, :2]).unsqueeze(1)

    out = tmp_path / "bad.onnx"
    spec = [{"name": "flow", "shape": [3, 28, 28], "meaning": "flow"}]
    with pytest.raises(MestreamError, match="does not support: Det"):
        export_model(UsesDet(), family="bad", inputs=spec, classes=CLASSES, out=out)
    assert list(tmp_path.iterdir()) == []


def test_logits_of_the_wrong_width_are_refused(tmp_path):
    spec = [{"name": "flow", "shape": [3, 28, 28], "meaning": "flow"}]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 5)).eval()
    with pytest.raises(MestreamError, match=r"logits of shape \[1, 5\], expected \[1, 3\]"):
        export_model(model, family="wide", inputs=spec, classes=CLASSES, out=tmp_path / "w.onnx")
    assert not (tmp_path / "w.onnx").exists()


def test_a_parity_failure_refuses_the_export(tmp_path, monkeypatch):
    spec = [{"name": "flow", "shape": [3, 28, 28], "meaning": "flow"}]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 3)).eval()
    with pytest.raises(MestreamError, match="ONNX Runtime differs from torch"):
        export_model(model, family="lin", inputs=spec, classes=CLASSES, out=tmp_path / "p.onnx", atol=-1.0)
    assert not (tmp_path / "p.onnx").exists()


def test_a_missing_checkpoint_is_one_clear_line(tmp_path):
    with pytest.raises(MestreamError, match="does not exist"):
        export_checkpoint(tmp_path / "nowhere" / "model.pt", tmp_path / "x.onnx")


def test_a_checkpoint_that_is_not_a_mestream_dict_is_refused(tmp_path):
    torch.save({"weights": 1}, tmp_path / "model.pt")
    with pytest.raises(MestreamError, match="lacks family, num_classes, state_dict, classes"):
        export_checkpoint(tmp_path, tmp_path / "x.onnx")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(MestreamError, match="cannot be read"):
        export_checkpoint(tmp_path / "junk.pt", tmp_path / "x.onnx")


def test_weights_for_another_architecture_are_refused(tmp_path, tiny_family):
    ckpt = _checkpoint(tmp_path / "model.pt", state_dict={"head.weight": torch.zeros(2, 2)})
    with pytest.raises(MestreamError, match="weights do not fit family 'tiny'"):
        export_checkpoint(ckpt, tmp_path / "x.onnx")


def test_the_export_command_writes_the_artifact_and_prints_its_summary(tmp_path, tiny_family, capsys):
    from edge.cli import main

    ckpt = _checkpoint(tmp_path / "model.pt")
    out = tmp_path / "sub" / "tiny.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file()
    assert "tiny" in printed and "negative, positive, surprise" in printed and str(out) in printed


def test_the_export_command_reports_a_bad_checkpoint_in_one_line(tmp_path):
    code = (
        "import sys; from edge.cli import main; "
        f"sys.exit(main(['export', '--checkpoint', {str(tmp_path / 'none.pt')!r}, '--out', {str(tmp_path / 'x.onnx')!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_registered_family_exports_with_only_tensorrt_supported_operators(tmp_path, name):
    family = get_family(name)
    torch.manual_seed(0)
    model = family.build(3).eval()
    inputs = [{"name": s.name, "shape": list(s.shape), "meaning": s.meaning} for s in family.inputs]
    artifact = export_model(model, family=name, inputs=inputs, classes=CLASSES, out=tmp_path / f"{name}.onnx")
    assert unsupported_ops(onnx.load(str(tmp_path / f"{name}.onnx"))) == []
    assert [i.name for i in artifact.inputs] == [s.name for s in family.inputs]
    assert json.loads(artifact.to_text())["model"]["family"] == name


def test_the_calibration_set_holds_the_trainers_own_inputs_for_the_engine_builder(tmp_path, assets):
    from engines.trt_build import load_calibration_set
    from trainer.export import write_calibration_set

    data = assets / "preprocessed" / "HTNet_MEGC2019_composite"
    labels = assets / "annotations" / "wangzhifengharrison_HTNet" / "combined_3_class2_for_optical_flow.csv"
    shapes = write_calibration_set("ststnet", data, labels, tmp_path / "calib", limit=32)
    assert shapes == {"flow": (32, 3, 28, 28)}
    meta = Artifact("ststnet", "0" * 64, (TensorInfo("flow", (1, 3, 28, 28), "float32"),), (), ())
    flow = load_calibration_set(tmp_path / "calib", meta)["flow"]
    assert flow.dtype == np.float32 and 0.0 <= float(flow.min()) and float(flow.max()) <= 1.0


def test_the_written_artifact_is_readable_by_others_like_any_file(tmp_path, tiny_family):
    out = tmp_path / "perm.onnx"
    export_checkpoint(_checkpoint(tmp_path / "model.pt"), out)
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # what open() would give, not mkstemp's 0600



def test_an_artifact_re_declared_for_the_composite_framing_keeps_its_graph_and_id(tmp_path):
    from dataclasses import replace

    from edge.perception.composite_framing import COMPOSITE_WINDOW, FRAMED_FLOW_FORM
    from tests.engines.tiny_artifacts import make_linear_onnx, tiny_artifact_meta
    from trainer.export import framed_for_composite

    bare = make_linear_onnx(tmp_path / "bare.onnx")
    model_id = graph_sha256(onnx.load(str(bare)))
    plain = make_linear_onnx(tmp_path / "plain.onnx", replace(tiny_artifact_meta(), model_id=model_id))
    framed = framed_for_composite(plain, tmp_path / "framed.onnx")
    again = read_artifact(tmp_path / "framed.onnx")
    assert again.model_id == model_id == graph_sha256(onnx.load(str(tmp_path / "framed.onnx")))
    assert again.flow["crop_window"] == list(COMPOSITE_WINDOW) and again.flow["form"] == FRAMED_FLOW_FORM
    assert again.input("flow").normalisation == FRAMED_FLOW_FORM and again.flow["params"] == {"tau": 0.25}
    assert framed.path == tmp_path / "framed.onnx"
    x = np.random.default_rng(0).random((1, 3, 28, 28), dtype=np.float32)
    with OrtEngine(plain) as a, OrtEngine(tmp_path / "framed.onnx") as b:
        assert np.array_equal(a.infer({"flow": x})["probs"], b.infer({"flow": x})["probs"])


def test_a_graph_that_does_not_match_its_id_is_not_re_declared(tmp_path):
    from tests.engines.tiny_artifacts import make_linear_onnx, tiny_artifact_meta
    from trainer.export import framed_for_composite

    plain = make_linear_onnx(tmp_path / "plain.onnx", tiny_artifact_meta())  # id "000..."
    with pytest.raises(MestreamError, match="does not hash to its model id"):
        framed_for_composite(plain, tmp_path / "framed.onnx")
    assert not (tmp_path / "framed.onnx").exists()
