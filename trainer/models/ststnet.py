"""STSTNet (Liong et al., FG 2019): a shallow triple-stream CNN on the 28x28 u, v, optical-strain flow.

Three parallel 3x3 convolutions with 3, 5 and 8 channels, each followed by ReLU, batch norm, 3x3 max pooling
and 2x2 average pooling; the 16x5x5 maps are concatenated and classified by one linear layer (about 1.7k
parameters). Published on these very inputs: UF1 0.7353 / UAR 0.7605. It is the project's sanity floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.optional import require
from trainer.models.base import FLOW, Family, Recipe

torch = require("torch", "train")
nn = torch.nn


@dataclass(frozen=True)
class STSTNetConfig:
    num_classes: int = 3
    dropout: float = 0.5


class STSTNet(nn.Module):
    def __init__(self, config: STSTNetConfig) -> None:
        super().__init__()
        self.config = config
        # padding 2 keeps the published 30x30 maps, which pool to 10x10 then 5x5
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3, width, kernel_size=3, padding=2),
                nn.ReLU(),
                nn.BatchNorm2d(width),
                nn.MaxPool2d(kernel_size=3, stride=3, padding=1),
                nn.Dropout(config.dropout),
                nn.AvgPool2d(kernel_size=2, stride=2),
            )
            for width in (3, 5, 8)
        )
        self.head = nn.Linear(16 * 5 * 5, config.num_classes)

    def forward(self, flow):  # flow (B, 3, 28, 28)
        maps = torch.cat([branch(flow) for branch in self.branches], dim=1)  # (B, 16, 5, 5)
        return self.head(maps.flatten(1))

    def training_loss(self, batch, labels):
        logits = self(batch["flow"])
        return nn.functional.cross_entropy(logits, labels), logits


def build(num_classes: int = 3, **options) -> STSTNet:
    """STSTNet; `options` override STSTNetConfig's fields."""
    return STSTNet(STSTNetConfig(num_classes=num_classes, **options))


FAMILY = Family(
    name="ststnet",
    summary="STSTNet shallow triple-stream flow CNN (Liong et al. 2019), the sanity floor",
    inputs=(FLOW,),
    # Fixed before evaluation: Adam as published, full-batch-sized steps, a fixed epoch count (no early stop).
    recipe=Recipe(epochs=100, lr=1e-3, batch_size=64, weight_decay=1e-4, extra={}),
    build=build,
)
