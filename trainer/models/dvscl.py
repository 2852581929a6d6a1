"""dvscl: dual-view self-supervised contrastive pre-training on unlabelled faces, then fine-tuning.

Follows DVSCL (dual-view self-supervised contrastive learning for micro-expressions; public code
MELABIPCAS/DVSCL pre-trains two view encoders with a CMC-style NCE loss, then fine-tunes): two encoders,
one per view of a face movement:
- the flow view: onset->apex optical flow (u, v, strain) at 28x28, a small CNN;
- the texture view: the grey apex crop at 56x56, a small CNN.
Pre-training (`pretrain`, once, before the LOSO folds) runs on UNLABELLED face frame pairs cut from the
real face videos of the assets folder (trainer.pretrain_faces: never the CASME II clips, whose people are
labelled test subjects), keeping only pairs whose estimated action-unit intensity passes a threshold. Its
loss is the cross-view InfoNCE between the two encoders' projections (a pair's flow and texture agree,
other pairs' do not) plus an NT-Xent between two augmentations of the flow view. Every fold then starts
from these encoder weights (and a fresh classifier) and fine-tunes on the labelled training subjects with
cross-entropy plus the same cross-view InfoNCE as an auxiliary term. The projection heads feed only the
losses; forward() is the two encoders and the classifier.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.files import atomic_path
from engines.optional import require
from trainer.models.base import FLOW, Family, InputSpec, Recipe
from trainer.models.layers import conv_bn_relu, info_nce, nt_xent, standardise_image

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional

log = logging.getLogger(__name__)

APEX = InputSpec(
    name="apex",
    shape=(1, 56, 56),
    meaning="aligned apex face crop in grey (mean of R, G, B), float in [0, 1], resized with INTER_AREA from "
    "the 224x224 crop",
)

PRETRAIN_EPOCHS = 40
PRETRAIN_BATCH = 128
PRETRAIN_LR = 2e-3
TEMPERATURE = 0.1


@dataclass(frozen=True)
class DVSCLConfig:
    num_classes: int = 3
    width: int = 16
    projection_dim: int = 64
    dropout: float = 0.3
    contrastive_weight: float = 0.1  # scales the cross-view InfoNCE added in training_loss
    temperature: float = TEMPERATURE


def encoder(in_channels: int, first_stride: int, width: int) -> nn.Sequential:
    """One conv per level, kept small: pre-training and 68 fine-tuning folds must fit a shared 2-core CPU."""
    return nn.Sequential(
        conv_bn_relu(in_channels, width, 3, stride=first_stride),  # texture 56 -> 28, flow stays 28
        conv_bn_relu(width, width, 3),
        nn.MaxPool2d(2),  # -> 14
        conv_bn_relu(width, 2 * width, 3),
        nn.MaxPool2d(2),  # -> 7
        conv_bn_relu(2 * width, 4 * width, 3),
    )


def projection(dim: int, projection_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, projection_dim))


class DVSCL(nn.Module):
    def __init__(self, config: DVSCLConfig) -> None:
        super().__init__()
        self.config = config
        feature = 4 * config.width
        self.flow_encoder = encoder(3, first_stride=1, width=config.width)  # (3, 28, 28) -> (4w, 7, 7)
        self.texture_encoder = encoder(1, first_stride=2, width=config.width)  # (1, 56, 56) -> (4w, 7, 7)
        self.flow_projection = projection(feature, config.projection_dim)
        self.texture_projection = projection(feature, config.projection_dim)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * feature, config.num_classes))

    def encode(self, flow, apex):
        f = self.flow_encoder(flow - 0.5).mean(dim=(2, 3))  # (B, 4w)
        t = self.texture_encoder(standardise_image(apex)).mean(dim=(2, 3))  # (B, 4w)
        return f, t

    def forward(self, flow, apex):  # flow (B, 3, 28, 28), apex (B, 1, 56, 56) -> logits (B, K)
        f, t = self.encode(flow, apex)
        return self.head(torch.cat([f, t], dim=1))

    def cross_view_loss(self, f, t):
        return info_nce(self.flow_projection(f), self.texture_projection(t), self.config.temperature)

    def training_loss(self, batch, labels):
        f, t = self.encode(batch["flow"], batch["apex"])
        logits = self.head(torch.cat([f, t], dim=1))
        loss = F.cross_entropy(logits, labels)
        if self.config.contrastive_weight > 0 and labels.shape[0] > 1:
            loss = loss + self.config.contrastive_weight * self.cross_view_loss(f, t)
        return loss, logits


def build(num_classes: int = 3, **options) -> DVSCL:
    """DVSCL; `options` override DVSCLConfig's fields."""
    return DVSCL(DVSCLConfig(num_classes=num_classes, **options))


def _augment_flow(flow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror (u -> 1 - u: the normalised u of a mirrored face), shift up to 2 px, and per-channel gain noise."""
    out = flow.copy()
    flip = rng.random(len(out)) < 0.5
    out[flip] = out[flip][..., ::-1]
    out[flip, 0] = 1.0 - out[flip, 0]
    for i in range(len(out)):
        dy, dx = rng.integers(-2, 3, size=2)
        out[i] = np.roll(out[i], (dy, dx), axis=(1, 2))
    out = out + rng.normal(0.0, 0.02, size=out.shape).astype(np.float32)
    return out.astype(np.float32)


def _augment_texture(texture: np.ndarray, flip: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Mirror with the flow view, shift up to 3 px, brightness and contrast jitter."""
    out = texture.copy()
    if flip is not None:
        out[flip] = out[flip][..., ::-1]
    for i in range(len(out)):
        dy, dx = rng.integers(-3, 4, size=2)
        out[i] = np.roll(out[i], (dy, dx), axis=(1, 2))
    gain = rng.uniform(0.8, 1.2, size=(len(out), 1, 1, 1))
    bias = rng.uniform(-0.1, 0.1, size=(len(out), 1, 1, 1))
    return np.clip(out * gain + bias, 0.0, 1.0).astype(np.float32)


def pretrain_on_pairs(flow: np.ndarray, texture: np.ndarray, seed: int, epochs: int = PRETRAIN_EPOCHS,
                      batch_size: int = PRETRAIN_BATCH, lr: float = PRETRAIN_LR) -> tuple[dict, list[float]]:
    """Self-supervised dual-view training of a fresh dvscl model; returns (encoder state_dict, loss per epoch).

    The state_dict holds the encoders and projections only: every fold gets its own fresh classifier.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(3)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    curve = []
    for _ in range(epochs):
        order = rng.permutation(len(flow))
        total, count = 0.0, 0
        for start in range(0, len(order) - 1, batch_size):
            index = order[start: start + batch_size]
            if len(index) < 8:  # a contrastive batch needs negatives
                continue
            f1 = _augment_flow(flow[index], rng)
            f2 = _augment_flow(flow[index], rng)
            x = _augment_texture(texture[index], None, rng)
            f1, f2, x = (torch.from_numpy(np.ascontiguousarray(a)) for a in (f1, f2, x))
            z1, t = model.encode(f1, x)
            z2 = model.flow_encoder(f2 - 0.5).mean(dim=(2, 3))
            loss = model.cross_view_loss(z1, t) + 0.5 * nt_xent(
                model.flow_projection(z1), model.flow_projection(z2), TEMPERATURE)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        curve.append(total / max(count, 1))
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    return state, curve


def pretrain(seed: int, work_dir: Path, assets: Path | None, epochs: int = PRETRAIN_EPOCHS) -> dict:
    """Pre-train both encoders once on the AU-filtered unlabelled pairs; cached per seed in `work_dir`."""
    from trainer.pretrain_faces import AU_MAX, AU_MIN, CACHE_VERSION, load_unlabelled_pairs

    work_dir = Path(work_dir)
    cache = work_dir / f"dvscl_pretrained_v{CACHE_VERSION}_seed{seed}_epochs{epochs}.pt"
    if cache.is_file():
        return torch.load(cache, map_location="cpu", weights_only=True)
    start = time.perf_counter()
    pairs = load_unlabelled_pairs(assets, work_dir)
    log.info("dvscl pre-training on %d unlabelled face pairs (of %d with a face) whose AU intensity is in "
             "[%.2f, %.2f) px", len(pairs), pairs.candidates, AU_MIN, AU_MAX)
    state, curve = pretrain_on_pairs(pairs.flow, pairs.texture, seed, epochs)
    log.info("dvscl pre-training: loss %.3f -> %.3f in %.0f s", curve[0], curve[-1], time.perf_counter() - start)
    with atomic_path(cache) as tmp:
        torch.save(state, tmp)
    return state


FAMILY = Family(
    name="dvscl",
    summary="dual-view (flow / apex texture) self-supervised contrastive pre-training on AU-filtered unlabelled "
    "face pairs, then fine-tuning with a cross-view InfoNCE auxiliary loss",
    inputs=(FLOW, APEX),
    # Fixed before any evaluation (not tuned on held-out subjects).
    recipe=Recipe(epochs=40, lr=1e-3, batch_size=32, weight_decay=1e-3,
                  extra={"contrastive_weight": 0.1, "temperature": TEMPERATURE,
                         "pretrain_epochs": PRETRAIN_EPOCHS}),
    build=build,
    pretrain=pretrain,
)
