"""ststnorm: ststens reading each map standardised, so that still skin sits at 0 whatever the min-max scaling did."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from tests.trainer.model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402
from trainer.models.ststens import centred  # noqa: E402


def _model():
    torch.manual_seed(0)
    return get_family("ststnorm").build(3)


def _flow(size=4):
    torch.manual_seed(1)
    return torch.rand(size, 3, 28, 28)


def test_a_standardised_map_has_zero_mean_and_unit_spread_per_sample_and_channel():
    out = centred(_flow(), "standard").flatten(2)
    np.testing.assert_allclose(out.mean(dim=2).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(dim=2).numpy(), 1.0, atol=0.02)


def test_the_same_motion_min_max_scaled_two_ways_reads_the_same_after_standardising():
    # The composite's per-map min-max scaling puts still skin at 0.2 or at 0.8 depending on the strongest
    # motion; standardising removes that offset and scale, so the model sees one input for both.
    flow = _flow(1)
    rescaled = 0.3 + 0.5 * flow
    torch.testing.assert_close(centred(rescaled, "standard"), centred(flow, "standard"), atol=1e-2, rtol=1e-2)  # up to the 1e-3 floor under the spread
    model = _model()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(rescaled), model(flow), atol=1e-2, rtol=1e-2)
        ststens = get_family("ststens").build(3)
        assert not torch.allclose(ststens(rescaled), ststens(flow), atol=2e-3)


def test_the_mirror_view_stays_exact_after_standardising():
    model, flow = _model(), _flow()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(model.mirrored(flow)), model(flow), atol=1e-6, rtol=1e-5)
    sign = torch.tensor([-1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(centred(model.mirrored(flow), "standard"), sign * centred(flow, "standard").flip(-1))


def test_training_reaches_every_parameter():
    model = _model()
    model.train()
    loss, _logits = model.training_loss({"flow": _flow()}, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert_every_parameter_has_a_finite_gradient(model)


def test_it_exports_to_onnx_opset_17_matching_torch_with_tensorrt_operators_only():
    model = _model()
    model.eval()
    assert_onnx_matches_torch(model, {"flow": _flow(1)})


def test_an_unknown_centring_is_one_clear_error():
    from engines.errors import MestreamError

    with pytest.raises(MestreamError, match="ststens center .zscore. is not one of none, median, mean, standard"):
        get_family("ststens").build(3, center="zscore")
