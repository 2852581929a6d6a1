"""ststens: members are STSTNets, the mirror view is exact, forward is the log of the ensemble's mean probability."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from tests.trainer.model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402


def _model(**kwargs):
    torch.manual_seed(0)
    return get_family("ststens").build(3, **kwargs)


def _flow(size=4):
    torch.manual_seed(1)
    return torch.rand(size, 3, 28, 28)


def test_each_member_has_exactly_the_parameter_count_of_one_ststnet():
    single = sum(p.numel() for p in get_family("ststnet").build(3).parameters())
    for members in (1, 3, 5):
        assert sum(p.numel() for p in _model(members=members).parameters()) == members * single


def test_the_mirror_view_reverses_columns_and_maps_u_to_one_minus_u_and_is_its_own_inverse():
    model, flow = _model(), _flow()
    mirrored = model.mirrored(flow)
    assert torch.equal(mirrored[:, 0], 1.0 - flow[:, 0].flip(-1))
    assert torch.equal(mirrored[:, 1:], flow[:, 1:].flip(-1))
    assert torch.equal(model.mirrored(mirrored), flow)


def test_the_mirror_view_matches_the_trainers_mirror_augmentation():
    from trainer.train import augment

    flow = _flow(64).numpy()
    out = augment({"flow": flow}, np.random.default_rng(0))["flow"]
    flipped = np.flatnonzero(np.abs(out - flow).reshape(64, -1).max(1) > 0)
    assert len(flipped) > 0
    np.testing.assert_array_equal(out[flipped], _model().mirrored(torch.from_numpy(flow[flipped])).numpy())


def test_forward_is_the_log_of_the_mean_probability_over_members_and_both_views():
    model, flow = _model(members=3), _flow()
    model.eval()
    with torch.no_grad():
        member = torch.softmax(model.member_logits(flow), dim=-1)
        member_mirror = torch.softmax(model.member_logits(model.mirrored(flow)), dim=-1)
        expected = torch.cat([member, member_mirror]).mean(dim=0)
        np.testing.assert_allclose(torch.exp(model(flow)).numpy(), expected.numpy(), atol=1e-6)
        # a member prefix is a smaller ensemble: member 0 alone without the mirror is a plain STSTNet's softmax
        np.testing.assert_allclose(model.mean_probability(flow, members=1, mirror=False).numpy(),
                                   member[0].numpy(), atol=1e-6)


def test_a_members_prediction_does_not_depend_on_the_other_members():
    model, flow = _model(members=3), _flow()
    model.eval()
    with torch.no_grad():
        before = model.member_logits(flow)[0].clone()
        model.conv.weight[16:] += 1.0  # change members 1 and 2 only
        model.head_weight[1:] += 1.0
        after = model.member_logits(flow)
    torch.testing.assert_close(after[0], before)
    assert not torch.allclose(after[1], before)


def test_training_loss_is_the_sum_of_the_members_cross_entropies_and_reaches_every_parameter():
    model, flow = _model(members=2, dropout=0.0), _flow()
    labels = torch.tensor([0, 1, 2, 0])
    model.train()
    loss, logits = model.training_loss({"flow": flow}, labels)
    member = model.member_logits(flow)
    expected = sum(torch.nn.functional.cross_entropy(member[m], labels) for m in range(2))
    torch.testing.assert_close(loss, expected)
    assert logits.shape == (4, 3)
    loss.backward()
    assert_every_parameter_has_a_finite_gradient(model)


def test_ststens_exports_to_onnx_opset_17_matching_torch_with_tensorrt_operators_only():
    model = _model(members=3)
    model.eval()
    assert_onnx_matches_torch(model, {"flow": _flow(1)})
