"""Every registered family: forward, backward and no NaN on tiny inputs; msmt exports with TensorRT ops only."""

import dataclasses
import importlib
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from trainer.models.registry import FAMILIES, get_family  # noqa: E402


def _batch(family, size=4):
    torch.manual_seed(0)
    batch = {spec.name: torch.rand(size, *spec.shape) for spec in family.inputs}
    batch["au_text"] = ["AU12", "AU4+AU7", "", "AU1+AU2"][:size]
    return batch


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_trains_one_step_without_nan_and_predicts_one_logit_per_class(name):
    family = get_family(name)
    torch.manual_seed(0)
    model = family.build(3)
    batch = _batch(family)
    labels = torch.tensor([0, 1, 2, 0])
    model.train()
    loss, logits = model.training_loss(batch, labels)
    assert logits.shape == (4, 3) and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        out = model(*[batch[spec.name] for spec in family.inputs])
    assert out.shape == (4, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_builds_a_module_level_class_from_a_frozen_config(name):
    model = get_family(name).build(3, dropout=0.0)
    module = importlib.import_module(FAMILIES[name])
    assert getattr(module, type(model).__name__) is type(model)  # importable and testable on its own
    assert model.config.dropout == 0.0 and model.config.num_classes == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.num_classes = 5


def test_an_option_a_family_does_not_have_is_refused():
    with pytest.raises(TypeError, match="heads"):
        get_family("ststnet").build(3, heads=4)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_names_its_inputs_and_a_fixed_recipe(name):
    family = get_family(name)
    assert family.name == name and family.inputs
    assert family.recipe.epochs >= 1 and family.recipe.lr > 0 and family.recipe.batch_size >= 2


def test_ststnet_keeps_the_published_size_of_about_1700_parameters():
    model = get_family("ststnet").build(3)
    assert 1500 < sum(p.numel() for p in model.parameters()) < 2000


def test_msmt_contrastive_loss_is_added_only_in_training_loss():
    from trainer.models.msmt import build

    family = get_family("msmt")
    batch, labels = _batch(family), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(0)
    with_nce = build(3, dropout=0.0)
    torch.manual_seed(0)
    without = build(3, dropout=0.0, contrastive_weight=0.0)
    loss_a, logits_a = with_nce.training_loss(batch, labels)
    loss_b, logits_b = without.training_loss(batch, labels)
    assert torch.allclose(logits_a, logits_b)
    assert float(loss_a.detach()) > float(loss_b.detach())


def test_msmt_modality_feature_joins_the_cls_token_and_the_attention_pooled_patches():
    family = get_family("msmt")
    model = family.build(3).eval()
    seen = {}
    model.motion.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        model(*[_batch(family)[s.name] for s in family.inputs])
    assert seen["out"].shape == (4, 2 * model.motion.pos.shape[-1])


def test_msmt_exports_to_onnx_opset_17_with_static_shapes_and_tensorrt_operators_only():
    onnx = pytest.importorskip("onnx", reason="onnx comes with the [train] extra")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a base dependency: pip install -e .")
    from engines.onnx_ops import unsupported_ops

    family = get_family("msmt")
    model = family.build(3).eval()
    inputs = tuple(torch.rand(1, *spec.shape) for spec in family.inputs)
    buffer = io.BytesIO()
    torch.onnx.export(model, inputs, buffer, opset_version=17, dynamo=False,
                      input_names=[s.name for s in family.inputs], output_names=["logits"])
    graph = onnx.load_from_string(buffer.getvalue())
    assert unsupported_ops(graph) == []
    for value in graph.graph.input:
        assert all(d.dim_value > 0 for d in value.type.tensor_type.shape.dim)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    got = session.run(None, {s.name: x.numpy() for s, x in zip(family.inputs, inputs)})[0]
    with torch.no_grad():
        want = model(*inputs).numpy()
    assert np.allclose(got, want, atol=1e-4)
