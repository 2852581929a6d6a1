"""What every model family provides: its inputs, its training recipe and a builder.

A family module (trainer/models/<name>.py) defines its nn.Module classes and a frozen config dataclass at
module level, a short `build(num_classes, **options)` entrypoint (options override the config's fields), and
one module-level `FAMILY = Family(...)` that the registry (trainer/models/registry.py) hands out.
The built torch module obeys two rules so that training, export and the live runtime agree:
- `forward(*inputs)` takes the tensors named in `inputs`, in that order, batch first, and returns
  logits (B, num_classes). This is exactly what gets exported to ONNX (static shapes, batch 1).
- `training_loss(batch, labels) -> (loss, logits)` adds the family's auxiliary losses (contrastive,
  proposal, ...). `batch` is a dict holding every tensor input by name plus training-only extras
  (e.g. "au_text": list[str] for fusion3d); branches used only for training never enter forward().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    name: str  # "flow", "apex" or "clip"
    shape: tuple[int, ...]  # without the batch axis, e.g. (3, 28, 28)
    meaning: str  # what the tensor holds and how it is normalised, copied into the artifact


# The recognition input of the literature (STSTNet, HTNet), read by most families
FLOW = InputSpec(
    name="flow",
    shape=(3, 28, 28),
    meaning="onset->apex optical flow: channels u, v, optical strain, each min-max normalised to [0, 1]",
)


@dataclass(frozen=True)
class Recipe:
    """Fixed training hyperparameters: chosen before any evaluation, never by looking at a test subject."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific knobs (loss weights, temperature)


@dataclass(frozen=True)
class Family:
    name: str
    summary: str  # one line: the published method this follows
    inputs: tuple[InputSpec, ...]
    recipe: Recipe
    build: Callable[..., Any]  # build(num_classes: int, **config fields) -> torch.nn.Module
    # Optional stage run once before the LOSO folds, on data that never includes labelled test subjects
    # (dvscl's self-supervised pre-training). Returns a state_dict that every fold starts from.
    pretrain: Callable[..., Any] | None = None
    # Optional: how this family's tensors are made from the loaded samples (e.g. fusion3d's "clip").
    # prepare(samples) -> dict[input name, np.ndarray (N, *shape) float32]. When None, the trainer's
    # default preparation handles "flow" and "apex".
    prepare: Callable[..., Any] | None = None
