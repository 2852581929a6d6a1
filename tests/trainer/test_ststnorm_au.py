"""trainer/models/ststnorm_au.py: the auxiliary AU head trains on the samples that carry AU codes and leaves
prediction to ststnorm's graph."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from trainer.models.registry import get_family  # noqa: E402
from trainer.models.ststnorm_au import AU_NAMES, au_targets  # noqa: E402


def test_au_text_becomes_multi_hot_targets_and_text_without_aus_is_left_out():
    targets, known = au_targets(["AU12 lip corner puller, AU15 lip corner depressor", "", "AU6 cheek raiser"])
    assert [AU_NAMES[k] for k, v in enumerate(targets[0]) if v] == ["AU12", "AU15"]
    assert known == [True, False, True] and not any(targets[2])  # AU6 is coded but not modelled


def test_the_au_head_adds_to_the_loss_only_where_aus_are_coded_and_forward_ignores_it():
    torch.manual_seed(0)
    model = get_family("ststnorm-au").build(3).eval()  # eval: no dropout, the same features both times
    flow = torch.rand(4, 3, 28, 28)
    labels = torch.tensor([0, 1, 2, 0])
    plain, _ = model.training_loss({"flow": flow, "au_text": [""] * 4}, labels)
    coded, _ = model.training_loss({"flow": flow, "au_text": ["AU4 brow lowerer", "", "", ""]}, labels)
    assert float(coded) > float(plain)
    before = model(flow).detach()
    with torch.no_grad():
        model.au_weight.add_(1.0)
    assert np.allclose(model(flow).detach().numpy(), before.numpy())
