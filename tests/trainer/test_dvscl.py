"""dvscl: dual-view encoders pre-trained on unlabelled AU-filtered face pairs, then fine-tuned."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="dvscl needs the [train] extra (torch)")

from model_checks import assert_every_parameter_has_a_finite_gradient, assert_onnx_matches_torch  # noqa: E402

from engines.errors import MestreamError  # noqa: E402
from trainer import pretrain_faces  # noqa: E402
from trainer.models import dvscl  # noqa: E402
from trainer.models.registry import get_family  # noqa: E402


def _batch(n=4):
    generator = torch.Generator().manual_seed(0)
    batch = {"flow": torch.rand(n, 3, 28, 28, generator=generator),
             "apex": torch.rand(n, 1, 56, 56, generator=generator), "au_text": [""] * n}
    return batch, torch.tensor([0, 1, 2, 0][:n])


def _tiny_pairs(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3, 28, 28), dtype=np.float32), rng.random((n, 1, 56, 56), dtype=np.float32)


def test_forward_gives_one_logit_row_per_clip():
    model = dvscl.build(3).eval()
    batch, _ = _batch()
    logits = model(batch["flow"], batch["apex"])
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()


def test_training_loss_backpropagates_without_nan():
    torch.manual_seed(0)
    model = dvscl.build(3).train()
    loss, logits = model.training_loss(*_batch())
    loss.backward()
    assert torch.isfinite(loss) and logits.shape == (4, 3)
    assert_every_parameter_has_a_finite_gradient(model)


def test_cross_view_loss_is_part_of_the_fine_tuning_loss():
    batch, labels = _batch()
    losses = []
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = dvscl.build(3, contrastive_weight=weight).eval()
        with torch.no_grad():
            losses.append(float(model.training_loss(batch, labels)[0]))
    assert losses[1] > losses[0] + 1e-3


def test_pretraining_lowers_its_loss_and_fills_every_encoder_weight():
    flow, texture = _tiny_pairs()
    state, curve = dvscl.pretrain_on_pairs(flow, texture, seed=0, epochs=6, batch_size=12)
    assert all(np.isfinite(curve)) and curve[-1] < curve[0]
    result = dvscl.build(3).load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ["head.1.bias", "head.1.weight"]  # each fold gets a fresh classifier


def test_pretrain_reads_the_cached_pairs_and_caches_its_weights(tmp_path):
    flow, texture = _tiny_pairs()
    np.savez(tmp_path / f"dvscl_unlabelled_pairs_v{pretrain_faces.CACHE_VERSION}.npz", flow=flow, texture=texture,
             au_intensity=np.full(len(flow), 0.5, np.float32), video=np.asarray(["v"] * len(flow)),
             candidates=np.asarray(len(flow)))
    state = dvscl.pretrain(seed=1, work_dir=tmp_path, assets=None, epochs=2)
    assert (tmp_path / f"dvscl_pretrained_v{pretrain_faces.CACHE_VERSION}_seed1_epochs2.pt").is_file()
    again = dvscl.pretrain(seed=1, work_dir=tmp_path, assets=None, epochs=2)
    for key in state:
        torch.testing.assert_close(again[key], state[key])


def test_pretrain_without_videos_or_cache_says_what_to_set(tmp_path):
    with pytest.raises(MestreamError, match="MESTREAM_ASSETS"):
        dvscl.pretrain(seed=0, work_dir=tmp_path, assets=None)


def test_forward_exports_to_onnx_and_matches_torch():
    torch.manual_seed(0)
    model = dvscl.build(3).eval()
    assert_onnx_matches_torch(model, {"flow": torch.rand(1, 3, 28, 28), "apex": torch.rand(1, 1, 56, 56)})


def test_unlabelled_videos_never_include_casme2_subjects():
    assert not any(name.startswith("casme2") for name in pretrain_faces.UNLABELLED_VIDEOS)
    assert set(pretrain_faces.EXCLUDED_VIDEOS) & set(pretrain_faces.UNLABELLED_VIDEOS) == set()


def test_flow_view_sees_a_moving_mouth_and_not_a_still_face():
    rng = np.random.default_rng(0)
    face = (rng.random((112, 112)) * 255).astype(np.uint8)
    import cv2

    face = cv2.GaussianBlur(face, (7, 7), 2)
    still, still_intensity = pretrain_faces.flow_view(face, face)
    moved = face.copy()
    moved[75:100, 25:90] = np.roll(face[75:100, 25:90], 2, axis=1)  # the mouth band shifts 2 px
    view, intensity = pretrain_faces.flow_view(face, moved)
    assert view.shape == (3, 28, 28) and view.dtype == np.float32
    assert view.min() >= 0 and view.max() <= 1
    assert still_intensity < pretrain_faces.AU_MIN <= intensity


def test_a_real_face_video_gives_face_pairs(assets):
    import os

    import cv2

    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    flows, textures, intensities = pretrain_faces._video_pairs(assets / "videos" / "pyfeat_single_face.mp4", cascade)
    assert len(flows) >= 30  # 72 frames, a face in every one
    assert textures[0].shape == (1, 56, 56)
    assert sum(pretrain_faces.AU_MIN <= a < pretrain_faces.AU_MAX for a in intensities) >= 10  # the smile moves


def test_registry_knows_dvscl_and_its_pretraining():
    family = get_family("dvscl")
    assert family.pretrain is dvscl.pretrain
