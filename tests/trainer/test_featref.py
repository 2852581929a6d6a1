"""featref: inception shared features, per-class proposal branches, fused classification."""

import pytest

torch = pytest.importorskip("torch", reason="featref needs the [train] extra (torch)")

from model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402

from trainer.models import featref  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402


def _batch(n=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    flow = torch.rand(n, 3, 28, 28, generator=generator)
    labels = torch.tensor([0, 1, 2, 0][:n])
    return {"flow": flow, "au_text": [""] * n}, labels


def test_forward_gives_one_logit_row_per_clip():
    model = featref.build(3).eval()
    logits = model(_batch()[0]["flow"])
    assert logits.shape == (4, 3)
    assert torch.isfinite(logits).all()


def test_training_loss_backpropagates_into_every_branch_without_nan():
    torch.manual_seed(0)
    model = featref.build(3).train()
    batch, labels = _batch()
    loss, logits = model.training_loss(batch, labels)
    loss.backward()
    assert logits.shape == (4, 3) and torch.isfinite(loss)
    assert_every_parameter_has_a_finite_gradient(model)
    assert model.proposal_weight_vectors.grad.abs().sum() > 0


def test_proposal_loss_is_part_of_the_training_loss():
    batch, labels = _batch()
    losses = []
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        model = featref.build(3, proposal_weight=weight).eval()  # eval: same dropout-free path both times
        with torch.no_grad():
            losses.append(float(model.training_loss(batch, labels)[0]))
    assert losses[1] > losses[0] + 1e-3


def test_forward_exports_to_onnx_and_matches_torch():
    torch.manual_seed(0)
    model = featref.build(3).eval()
    assert_onnx_matches_torch(model, {"flow": torch.rand(1, 3, 28, 28)})


def test_registry_knows_featref():
    assert get_family("featref").inputs[0].shape == (3, 28, 28)
