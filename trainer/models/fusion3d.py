"""fusion3d: RGB and FLOW 3D-convolution streams, fused, with an AU-text attribute embedding in training.

Follows the attribute-embedding / cross-modal contrastive line of ME recognition: a video embedding from
3D CNN streams over RGB frames and optical flow is classified, and in training it is also aligned with the
embedding of the clip's FACS action-unit text ("AU12 lip corner puller, AU6 cheek raiser", from the official
coding sheets via trainer.data.au_codes) by a symmetric InfoNCE loss. The text is encoded by a FROZEN
BERT-family sentence encoder (all-MiniLM-L6-v2, offline, trainer.text_encoder) and only a linear projection
of it is learned. Clips with the same AU text count as positives of each other (not pushed apart), and clips
without AU coding (all of SMIC) are left out of that loss. The text branch never enters forward(): the
exported network sees pixels and flow only.

Frames: the MEGC2019 composite holds one apex crop per clip, so the default family uses T=1 (the apex frame
as a one-frame clip, made by `prepare`). `build(frames=8)` gives the same design for real T-frame clips
(temporal kernels of 3 and temporal pooling switch on when there are frames to convolve and pool), and
`flow_frames` does the same for a flow clip instead of the single onset->apex flow map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.optional import require
from trainer.models.base import Family, InputSpec, Recipe
from trainer.models.layers import conv3d_bn_relu, info_nce, standardise_image

torch = require("torch", "train")
nn, F = torch.nn, torch.nn.functional

SIZE = 56  # apex crop side fed to the RGB stream; 224 -> 56 keeps 3D convs cheap on a 2-core CPU
FRAMES = 1  # the composite has only the apex frame


def clip_spec(frames: int = FRAMES, size: int = SIZE) -> InputSpec:
    what = "the apex frame only (T=1: the MEGC2019 composite has no other frames)" if frames == 1 else (
        f"{frames} consecutive aligned face frames, onset to offset")
    return InputSpec(
        name="clip",
        shape=(3, frames, size, size),
        meaning=f"RGB face clip (C, T, H, W), float in [0, 1], {what}, each frame resized with INTER_AREA "
        f"from the 224x224 aligned crop",
    )


def flow_spec(flow_frames: int = 0) -> InputSpec:
    if flow_frames == 0:
        return InputSpec(
            name="flow",
            shape=(3, 28, 28),
            meaning="onset->apex optical flow: channels u, v, optical strain, each min-max normalised to [0, 1]",
        )
    return InputSpec(
        name="flow",
        shape=(3, flow_frames, 28, 28),
        meaning=f"{flow_frames} consecutive optical-flow maps (C=u, v, optical strain; T; 28; 28), each min-max "
        "normalised to [0, 1]",
    )


@dataclass(frozen=True)
class Fusion3DConfig:
    num_classes: int = 3
    frames: int = FRAMES  # T of the RGB clip input (1 on the composite)
    size: int = SIZE
    flow_frames: int = 0  # 0 for one (3, 28, 28) flow map, else T of a (3, T, 28, 28) flow clip
    width: int = 8  # small on purpose: 68 LOSO folds on a shared 2-core CPU
    embed_dim: int = 64
    dropout: float = 0.3
    contrastive_weight: float = 0.2  # weight of the video-text InfoNCE added in training_loss (0 turns it off)
    temperature: float = 0.1


def stream(in_channels: int, t: int, spatial_pools: int, width: int) -> nn.Sequential:
    """Three conv3d levels (width, 2 width, 4 width); temporal kernels and pooling only where there is time."""
    kt = 3 if t >= 3 else 1  # T=1 stays a cheap 1xkxk conv
    layers, channels, remaining_t = [], in_channels, t
    for level in range(3):
        out = width * 2**level
        layers.append(conv3d_bn_relu(channels, out, (kt, 3, 3)))
        pool_t = 2 if (level > 0 and remaining_t >= 2) else 1
        remaining_t //= pool_t
        if level < spatial_pools:
            layers.append(nn.MaxPool3d((pool_t, 2, 2)))
        elif pool_t > 1:
            layers.append(nn.MaxPool3d((pool_t, 1, 1)))
        channels = out
    return nn.Sequential(*layers)


class Fusion3D(nn.Module):
    """`text_encoder`: texts -> (N, 384) float32 embeddings; defaults to the frozen MiniLM of trainer.text_encoder."""

    def __init__(self, config: Fusion3DConfig, text_encoder=None) -> None:
        super().__init__()
        self.config = config
        width, embed_dim = config.width, config.embed_dim
        self.rgb = stream(3, config.frames, spatial_pools=3, width=width)  # 56 -> 7
        self.flow = stream(3, max(config.flow_frames, 1), spatial_pools=2, width=width)  # 28 -> 7
        self.fuse = nn.Sequential(nn.Linear(2 * 4 * width, embed_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(embed_dim, config.num_classes))
        # training-only: projections of the video and the frozen text embeddings into one space
        self.video_proj = nn.Linear(embed_dim, embed_dim)
        self.text_proj = nn.Linear(384, embed_dim)
        self._text_encoder = text_encoder

    def embed(self, clip, flow):
        rgb = self.rgb(standardise_image(clip)).mean(dim=(2, 3, 4))  # (B, 4w)
        if flow.dim() == 4:  # one flow map: a clip of one frame
            flow = flow.unsqueeze(2)
        motion = self.flow(flow - 0.5).mean(dim=(2, 3, 4))  # (B, 4w)
        return self.fuse(torch.cat([rgb, motion], dim=1))  # (B, E)

    def forward(self, clip, flow):  # clip (B, 3, T, S, S), flow (B, 3, 28, 28) or (B, 3, Tf, 28, 28)
        return self.head(self.embed(clip, flow))

    def encode_text(self, texts):
        if self._text_encoder is None:
            from trainer.text_encoder import encode_texts

            self._text_encoder = encode_texts
        return torch.from_numpy(np.asarray(self._text_encoder(list(texts)), dtype=np.float32))

    def training_loss(self, batch, labels):
        config = self.config
        video = self.embed(batch["clip"], batch["flow"])
        logits = self.head(video)
        loss = F.cross_entropy(logits, labels)
        texts = batch.get("au_text")
        if config.contrastive_weight > 0 and texts is not None:
            known = [i for i, t in enumerate(texts) if t]
            if len(known) >= 2:  # InfoNCE needs at least one negative
                index = torch.tensor(known, device=video.device)
                text = self.text_proj(self.encode_text([texts[i] for i in known]).to(video.device))
                same = np.array([[texts[i] == texts[j] for j in known] for i in known])
                nce = info_nce(self.video_proj(video[index]), text, config.temperature,
                               torch.from_numpy(same).to(video.device))
                loss = loss + config.contrastive_weight * nce
        return loss, logits


def build(num_classes: int = 3, text_encoder=None, **options) -> Fusion3D:
    """Fusion3D; `options` override Fusion3DConfig's fields."""
    return Fusion3D(Fusion3DConfig(num_classes=num_classes, **options), text_encoder)


def prepare(samples) -> dict[str, np.ndarray]:
    """The composite as fusion3d inputs: the apex crop as a one-frame RGB clip, and the flow map as is."""
    import cv2

    clip = np.empty((len(samples), 3, FRAMES, SIZE, SIZE), dtype=np.float32)
    for i, image in enumerate(samples.apex):
        small = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        clip[i, :, 0] = small.transpose(2, 0, 1)
    return {"clip": clip, "flow": np.asarray(samples.flow, dtype=np.float32)}


FAMILY = Family(
    name="fusion3d",
    summary="RGB + FLOW 3D-CNN streams fused, FACS AU-text attribute embedding (frozen MiniLM) aligned by "
    "cross-modal InfoNCE in training",
    inputs=(clip_spec(), flow_spec()),
    # Fixed before any evaluation (not tuned on held-out subjects).
    recipe=Recipe(epochs=40, lr=2e-3, batch_size=32, weight_decay=1e-3,
                  extra={"contrastive_weight": 0.2, "temperature": 0.1}),
    build=build,
    prepare=prepare,
)
