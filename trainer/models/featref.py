"""featref: feature refinement with expression-specific feature learning and fusion (Zhou et al., 2022).

Follows "Feature refinement: an expression-specific feature learning and fusion method for micro-expression
recognition" (Pattern Recognition 122, 2022; published 0.7838 UF1 / 0.7832 UAR on the MEGC2019 composite):
1. Expression-shared features: two inception modules on the onset->apex optical flow (u, v, strain),
   each followed by 2x2 max pooling: (3, 28, 28) -> (C, 7, 7).
2. Expression proposal module: one branch per class. Each branch refines the shared map with its own
   convolution and attends over the 7x7 positions with its own spatial attention (softmax over positions),
   giving an expression-specific feature vector. A proposal head per branch says "is this clip of my class?"
   and is trained by the proposal loss (binary cross-entropy against the one-hot label), which is what makes
   each branch specific to its expression.
3. Classification fuses the expression-specific features (concatenated with the pooled shared feature).
The proposal heads feed only the loss, so forward() is the classification path alone: Conv, MatMul,
Softmax, ReduceSum/ReduceMean, Concat and Gemm, all static and TensorRT-parseable.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.optional import require
from trainer.models.base import FLOW, Family, Recipe
from trainer.models.layers import Inception, conv_bn_relu

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional


@dataclass(frozen=True)
class FeatRefConfig:
    num_classes: int = 3
    shared_channels: tuple[int, int] = (6, 8)  # small on purpose: 68 LOSO folds on a shared 2-core CPU
    specific_channels: int = 16
    dropout: float = 0.3
    proposal_weight: float = 0.5  # scales the proposal loss added in training_loss


class FeatRef(nn.Module):
    def __init__(self, config: FeatRefConfig) -> None:
        super().__init__()
        self.config = config
        first = Inception(3, config.shared_channels[0])
        second = Inception(first.out_channels, config.shared_channels[1])
        self.shared = nn.Sequential(first, nn.MaxPool2d(2), second, nn.MaxPool2d(2))  # -> (B, C, 7, 7)
        shared_out = second.out_channels
        self.num_classes = config.num_classes
        self.specific_channels = config.specific_channels
        # all K branches in one grouped-by-reshape conv: output channel k*d..(k+1)*d-1 belongs to class k
        self.refine = conv_bn_relu(shared_out, config.num_classes * config.specific_channels, 3)
        self.attention = nn.Conv2d(shared_out, config.num_classes, kernel_size=1)  # one spatial score map per class
        self.proposal_weight_vectors = nn.Parameter(torch.randn(config.num_classes, config.specific_channels) * 0.05)
        self.proposal_bias = nn.Parameter(torch.zeros(config.num_classes))
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(config.num_classes * config.specific_channels + shared_out, config.num_classes),
        )

    def features(self, flow):
        shared = self.shared(flow - 0.5)  # (B, C, 7, 7)
        b = shared.shape[0]
        positions = shared.shape[2] * shared.shape[3]
        refined = self.refine(shared).reshape(b, self.num_classes, self.specific_channels, positions)
        attention = torch.softmax(self.attention(shared).reshape(b, self.num_classes, 1, positions), dim=-1)
        specific = (refined * attention).sum(dim=-1)  # (B, K, d): one expression-specific vector per class
        pooled = shared.mean(dim=(2, 3))  # (B, C)
        return specific, pooled

    def classify(self, specific, pooled):
        return self.head(torch.cat([specific.flatten(1), pooled], dim=1))

    def forward(self, flow):  # flow (B, 3, 28, 28) -> logits (B, K)
        specific, pooled = self.features(flow)
        return self.classify(specific, pooled)

    def proposal_logits(self, specific):  # (B, K, d) -> (B, K): "is this clip of class k?" per branch
        return (specific * self.proposal_weight_vectors).sum(dim=-1) + self.proposal_bias

    def training_loss(self, batch, labels):
        specific, pooled = self.features(batch["flow"])
        logits = self.classify(specific, pooled)
        loss = F.cross_entropy(logits, labels)
        if self.config.proposal_weight > 0:
            target = F.one_hot(labels, self.num_classes).to(specific.dtype)
            proposal = F.binary_cross_entropy_with_logits(self.proposal_logits(specific), target)
            loss = loss + self.config.proposal_weight * proposal
        return loss, logits


def build(num_classes: int = 3, **options) -> FeatRef:
    """FeatRef; `options` override FeatRefConfig's fields."""
    return FeatRef(FeatRefConfig(num_classes=num_classes, **options))


FAMILY = Family(
    name="featref",
    summary="feature refinement (Zhou et al. 2022): inception expression-shared flow features, per-class "
    "attention proposal branches with a proposal loss, fused expression-specific features",
    inputs=(FLOW,),
    # Fixed before any evaluation (not tuned on held-out subjects): AdamW, one-cycle schedule, fixed epochs.
    recipe=Recipe(epochs=40, lr=2e-3, batch_size=32, weight_decay=1e-3, extra={"proposal_weight": 0.5}),
    build=build,
)
