"""ststens: an ensemble of STSTNets trained side by side in one module, with mirror test-time averaging.

Each member is exactly an STSTNet (trainer/models/ststnet.py): 3x3 convolutions to 3 + 5 + 8 channels, ReLU,
batch norm, 3x3 max pooling, dropout, 2x2 average pooling and one linear layer on the 16x5x5 maps. The three
branches of a member are per-channel after their convolution, so a member's branches are one 3 -> 16
convolution, and E members are one 3 -> 16E convolution (every member reads the same flow): one wide
convolution runs far faster on a CPU than 3E narrow ones, which is what makes an ensemble affordable in a
68-fold LOSO on 2 cores. The members' linear heads are one batched MatMul (E, 400, C).

Training: every member sees the same class-balanced, mirror-augmented batches; the loss is the sum of the
members' cross-entropies, so each member's gradient is the one it would get alone, and members differ by
their initialisation and dropout. Prediction (forward, the exported graph): the softmax of every member on the
flow and on its exact mirror image (mirror the 28x28 maps, u -> 1 - u: the composite min-max scales u per
image, so -u scales to exactly 1 - u; v and strain only mirror), averaged; forward returns the log of that
mean probability, so the artifact's softmax "probs" is the ensemble's mean probability.

Operators: Conv, Relu, BatchNormalization, MaxPool, AveragePool, Reshape, Transpose, MatMul, Gather, Concat,
Softmax, ReduceMean, Log: all static, all on TensorRT's parser list.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.errors import MestreamError
from engines.optional import require
from trainer.models.base import FLOW, Family, Recipe

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional

WIDTHS = (3, 5, 8)  # STSTNet's three streams, per member
# How each map is re-centred before the members read it (ststnorm, trainer/models/ststnorm.py, says why)
CENTERS = ("none", "median", "mean", "standard")


@dataclass(frozen=True)
class EnsembleConfig:
    num_classes: int = 3
    members: int = 3
    dropout: float = 0.5
    mirror: bool = True  # average each member's softmax over the flow and its exact mirror image
    center: str = "none"  # one of CENTERS

    def __post_init__(self) -> None:
        if self.center not in CENTERS:
            raise MestreamError(f"ststens center {self.center!r} is not one of {', '.join(CENTERS)}; "
                                "pass center=none, median, mean or standard")


def centred(flow, center: str):
    """Each (sample, channel) map minus its median or mean, and over its standard deviation for "standard"."""
    if center == "none":
        return flow
    flat = flow.flatten(2)
    middle = flat.median(dim=2).values if center == "median" else flat.mean(dim=2)
    out = flow - middle[:, :, None, None]
    if center == "standard":
        out = out / (flat.std(dim=2)[:, :, None, None] + 1e-3)
    return out


def mirror_flow(flow, reverse):
    """The exact mirror image of a composite flow: columns reversed (`reverse` = W-1 .. 0), u -> 1 - u."""
    flipped = flow.index_select(3, reverse)
    return torch.cat([1.0 - flipped[:, :1], flipped[:, 1:]], dim=1)


class STSTEnsemble(nn.Module):
    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__()
        self.config = config
        self.members = config.members
        self.mirror = config.mirror
        width = sum(WIDTHS)
        # channels m*16 .. m*16+15 belong to member m (its 3, 5 and 8 channel streams, in that order)
        self.conv = nn.Conv2d(3, config.members * width, kernel_size=3, padding=2)  # padding 2: STSTNet's 30x30 maps
        self.norm = nn.BatchNorm2d(config.members * width)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.drop = nn.Dropout(config.dropout)
        self.average = nn.AvgPool2d(kernel_size=2, stride=2)
        features = width * 5 * 5
        # nn.Linear's default initialisation, member by member
        bound = features ** -0.5
        self.head_weight = nn.Parameter(torch.empty(config.members, features, config.num_classes).uniform_(-bound, bound))
        self.head_bias = nn.Parameter(torch.empty(config.members, 1, config.num_classes).uniform_(-bound, bound))
        self.register_buffer("reverse", torch.arange(FLOW.shape[2] - 1, -1, -1), persistent=False)

    def member_logits(self, flow):  # (B, 3, 28, 28) -> (E, B, C)
        x = centred(flow, self.config.center).contiguous(memory_format=torch.channels_last)  # 2x faster on CPU
        x = self.average(self.drop(self.pool(self.norm(torch.relu(self.conv(x))))))  # (B, 16E, 5, 5)
        x = x.reshape(x.shape[0], self.members, -1).transpose(0, 1)  # (E, B, 400)
        return torch.matmul(x, self.head_weight) + self.head_bias

    def mirrored(self, flow):
        return mirror_flow(flow, self.reverse)

    def mean_probability(self, flow, members: int | None = None, mirror: bool | None = None):
        """Mean softmax over the first `members` members and, with `mirror`, over both views: (B, C)."""
        members = self.members if members is None else members
        mirror = self.mirror if mirror is None else mirror
        views = torch.cat([flow, self.mirrored(flow)], dim=0) if mirror else flow
        probs = torch.softmax(self.member_logits(views)[:members], dim=-1).mean(dim=0)  # (views*B, C)
        if mirror:
            probs = probs.reshape(2, flow.shape[0], -1).mean(dim=0)
        return probs

    def forward(self, flow):  # flow (B, 3, 28, 28) -> log mean probability (B, C)
        return torch.log(self.mean_probability(flow))

    def training_loss(self, batch, labels):
        logits = self.member_logits(batch["flow"])  # (E, B, C)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.repeat(self.members),
                               reduction="sum") / labels.shape[0]  # sum over members, mean over the batch
        return loss, torch.log_softmax(logits, dim=-1).mean(dim=0)


def build(num_classes: int = 3, **options) -> STSTEnsemble:
    """The ensemble; `options` override EnsembleConfig's fields."""
    return STSTEnsemble(EnsembleConfig(num_classes=num_classes, **options))


FAMILY = Family(
    name="ststens",
    summary="ensemble of 3 STSTNets in one module (one wide convolution), softmax averaged over the members "
    "and the exact mirror view",
    inputs=(FLOW,),
    # Chosen by inner validation on training subjects only, before its full LOSO; the candidates, figures and
    # command: benchmarks/results/loso_megc2019.md, "Best family so far: ststens".
    recipe=Recipe(epochs=50, lr=1e-3, batch_size=64, weight_decay=1e-4,
                  extra={"provenance": "epochs, member count and mirror averaging chosen by inner validation on "
                                       "training subjects of three LOSO folds (trainer/inner_select.py), before "
                                       "any full LOSO of this family"}),
    build=build,
)
