"""Blocks and losses shared by the model families.

Everything here exports to ONNX opset 17 with static shapes and TensorRT-parseable operators only
(Conv/Conv3d, MatMul, ReduceMean, Relu, BatchNormalization folded into Conv, Concat, Reshape).
Losses are training-only and never enter a forward() that gets exported.
Add new blocks freely; never change an existing signature (other families use them).
"""

from __future__ import annotations

from engines.optional import require

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv2d (same padding) -> BatchNorm2d -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def conv3d_bn_relu(
    in_channels: int, out_channels: int, kernel_size: tuple[int, int, int] = (3, 3, 3)
) -> nn.Sequential:
    """Conv3d (same padding, so T=1 works as well as T=8) -> BatchNorm3d -> ReLU."""
    padding = tuple(k // 2 for k in kernel_size)
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class Inception(nn.Module):
    """GoogLeNet-style inception module: 1x1, 3x3, 5x5 (as two 3x3) and pool->1x1 branches, concatenated."""

    def __init__(self, in_channels: int, branch_channels: int) -> None:
        super().__init__()
        c = branch_channels
        self.b1 = conv_bn_relu(in_channels, c, 1)
        self.b3 = nn.Sequential(conv_bn_relu(in_channels, c, 1), conv_bn_relu(c, c, 3))
        self.b5 = nn.Sequential(conv_bn_relu(in_channels, c, 1), conv_bn_relu(c, c, 3), conv_bn_relu(c, c, 3))
        self.pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, c, 1))
        self.out_channels = 4 * c

    def forward(self, x):  # (B, C_in, H, W) -> (B, 4c, H, W)
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], dim=1)


def standardise_image(x):
    """Per-image zero mean, unit variance over channels and pixels (datasets differ in lighting and gain).

    Written with ReduceMean/Sqrt rather than torch.std so that the ONNX graph stays simple.
    """
    dims = tuple(range(1, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    std = ((x - mean) ** 2).mean(dim=dims, keepdim=True).add(1e-6).sqrt()
    return (x - mean) / std


def info_nce(a, b, temperature: float, positives=None):
    """Symmetric InfoNCE / NT-Xent between two (B, D) embeddings whose rows correspond.

    Row i of `a` is pulled to row i of `b` and pushed from the others. `positives` (B, B) bool, optional,
    marks further pairs that must not be pushed apart (e.g. two clips with the same AU text): the target of
    each row is then spread uniformly over its positives, as in supervised contrastive learning.
    """
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.t() / temperature  # (B, B)
    if positives is None:
        target = torch.arange(a.shape[0], device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
    mask = (positives | eye).float()
    target = mask / mask.sum(dim=1, keepdim=True)
    target_t = mask.t() / mask.t().sum(dim=1, keepdim=True)
    loss_ab = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_ba = -(target_t * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_ab + loss_ba)


def nt_xent(z1, z2, temperature: float):
    """SimCLR NT-Xent over 2B views: each view's positive is its pair, all other 2B-2 views are negatives."""
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=-1)  # (2B, D)
    n = z1.shape[0]
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)
