"""SOFTNet's shallow three-stream network: one small conv stream per channel (u, v, strain) -> apex score.

Liong et al., "Shallow Optical Flow Three-Stream CNN for Macro- and Micro-Expression Spotting from Long
Videos" (ICIP 2021; genbing99/SoftNet-SpotME): each 42x42 channel gets its own 3x3 convolution (3, 5 and
8 filters), ReLU and 3x3 max-pooling (stride 3); the 16 maps are concatenated, pooled 2x2, flattened and
regressed through one hidden dense layer to a single linear score. The hidden layer is 128 wide here
(SOFTNet: 400) so the exported artifact stays under 1 MB; everything else follows the paper.

    model = SoftNet()
    score = model(x)    # x (B, 3, 42, 42) float32 -> (B, 1)
"""

from __future__ import annotations

from engines.optional import require

torch = require("torch", "train")  # the trainer's extra; the edge never imports this module
nn = torch.nn

STREAM_FILTERS = (3, 5, 8)  # u, v, strain (SOFTNet)


class SoftNet(nn.Module):
    def __init__(self, roi: int = 42, hidden: int = 128, filters: tuple[int, ...] = STREAM_FILTERS) -> None:
        super().__init__()
        self.roi = roi
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 3)) for f in filters
        )
        side = (roi // 3) // 2
        self.pool = nn.MaxPool2d(2, 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(sum(filters) * side * side, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [stream(x[:, c : c + 1]) for c, stream in enumerate(self.streams)]  # each (B, f, roi/3, roi/3)
        return self.head(self.pool(torch.cat(parts, dim=1)))  # (B, 1)
