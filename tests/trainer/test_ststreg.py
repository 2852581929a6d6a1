"""ststreg: fixed region boxes make a 2x2 mosaic that commutes with the mirror; members read it, the flow or both."""

import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from engines.errors import MestreamError  # noqa: E402
from tests.trainer.model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402
from trainer.models.ststreg import BOXES, SIZE, mosaic  # noqa: E402


def _model(**kwargs):
    torch.manual_seed(0)
    return get_family("ststreg").build(3, **kwargs)


def _flow(size=4):
    torch.manual_seed(1)
    return torch.rand(size, 3, 28, 28)


def test_the_mosaic_places_the_eye_boxes_above_the_mouth_corner_boxes():
    flow = _flow()
    out = mosaic(flow)
    assert out.shape == flow.shape
    (r0, c0), (r1, c1), (r2, c2), (r3, c3) = BOXES
    assert torch.equal(out[:, :, :SIZE, :SIZE], flow[:, :, r0:r0 + SIZE, c0:c0 + SIZE])
    assert torch.equal(out[:, :, :SIZE, SIZE:], flow[:, :, r1:r1 + SIZE, c1:c1 + SIZE])
    assert torch.equal(out[:, :, SIZE:, :SIZE], flow[:, :, r2:r2 + SIZE, c2:c2 + SIZE])
    assert torch.equal(out[:, :, SIZE:, SIZE:], flow[:, :, r3:r3 + SIZE, c3:c3 + SIZE])


def test_the_boxes_are_mirror_symmetric_so_the_mosaic_of_the_mirror_is_the_mirror_of_the_mosaic():
    model, flow = _model(), _flow()
    torch.testing.assert_close(mosaic(model.mirrored(flow)), model.mirrored(mosaic(flow)), rtol=0, atol=0)


def test_view_whole_is_ststens_with_the_same_parameters():
    ststens = get_family("ststens").build(3, members=3)
    model = _model(members=3, view="whole")
    model.load_state_dict(ststens.state_dict())
    model.eval(), ststens.eval()
    flow = _flow()
    with torch.no_grad():
        torch.testing.assert_close(model(flow), ststens(flow))


def test_view_both_gives_each_member_one_head_over_the_whole_and_the_region_maps():
    model, flow = _model(members=2, view="both"), _flow()
    assert model.head_weight.shape == (2, 2 * 16 * 5 * 5, 3)
    model.eval()
    with torch.no_grad():
        before = model.member_logits(flow)
        model.head_weight[0, 400:] = 0.0  # member 0 without its region features
        whole_only = model.member_logits(flow)
    assert not torch.allclose(whole_only[0], before[0])
    torch.testing.assert_close(whole_only[1], before[1])


def test_an_unknown_view_is_one_line_naming_it_and_the_choices():
    with pytest.raises(MestreamError, match="'eyes'.*both, mixed, regions or whole"):
        _model(view="eyes")


@pytest.mark.parametrize("view", ["regions", "both"])
def test_the_loss_decreases_on_a_tiny_batch_and_reaches_every_parameter(view):
    model, flow = _model(members=2, view=view, dropout=0.0), _flow(8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss, logits = model.training_loss({"flow": flow}, labels)
        loss.backward()
        if not losses:
            assert_every_parameter_has_a_finite_gradient(model)
        optimiser.step()
        losses.append(loss.item())
    assert logits.shape == (8, 3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("view", ["regions", "both"])
def test_ststreg_exports_to_onnx_opset_17_matching_torch_with_tensorrt_operators_only(view):
    model = _model(members=3, view=view)
    model.eval()
    assert_onnx_matches_torch(model, {"flow": _flow(1)})


def test_label_smoothing_softens_every_members_targets_in_the_training_loss():
    flow, labels = _flow(), torch.tensor([0, 1, 2, 0])
    plain, smooth = _model(members=2, dropout=0.0), _model(members=2, dropout=0.0, label_smoothing=0.1)
    plain.train(), smooth.train()
    member = smooth.member_logits(flow)
    expected = sum(torch.nn.functional.cross_entropy(member[m], labels, label_smoothing=0.1) for m in range(2))
    torch.testing.assert_close(smooth.training_loss({"flow": flow}, labels)[0], expected)
    assert not torch.isclose(plain.training_loss({"flow": flow}, labels)[0], expected)


def test_view_mixed_is_ststens_members_plus_members_reading_only_the_regions():
    model, flow = _model(members=4, view="mixed"), _flow()
    assert model.head_weight.shape == (4, 16 * 5 * 5, 3)
    model.eval()
    with torch.no_grad():
        before = model.member_logits(flow)
        changed = flow.clone()
        changed[:, :, 27, 27] += 1.0  # a pixel outside every region box
        after = model.member_logits(changed)
    assert not torch.allclose(after[:2], before[:2])  # members 0, 1 read the whole flow
    torch.testing.assert_close(after[2:], before[2:])  # members 2, 3 read the mosaic only


def test_mixup_trains_on_a_weighted_pair_of_flows_with_the_targets_mixed_by_the_same_weight():
    flow, labels = _flow(), torch.tensor([0, 1, 2, 0])
    model = _model(members=2, dropout=0.0, mixup=0.4)
    model.train()
    torch.manual_seed(5)
    loss = model.training_loss({"flow": flow}, labels)[0]
    torch.manual_seed(5)
    weight = float(torch.distributions.Beta(0.4, 0.4).sample())
    other = torch.randperm(4)
    member = model.member_logits(weight * flow + (1 - weight) * flow[other])
    expected = sum(weight * torch.nn.functional.cross_entropy(member[m], labels)
                   + (1 - weight) * torch.nn.functional.cross_entropy(member[m], labels[other]) for m in range(2))
    torch.testing.assert_close(loss, expected)
