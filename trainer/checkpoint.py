"""The checkpoint of a trained model, saved by `mestream train --fit-all` and loaded by `mestream export`.

    save_checkpoint(out / "model.pt", family, model, classes=samples.classes, recipe=recipe, seed=0, ...)
    family, model, ckpt = load_model(Path("runs/ststnorm/model.pt"))

The file is a torch-saved dict. It holds what rebuilding the model needs (family, num_classes, state_dict,
classes, inputs) and what the exported artifact records (recipe, seed, training, protocol, scores, selection,
crop_window).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from engines.errors import MestreamError
from engines.files import atomic_path
from engines.optional import require

REQUIRED = ("family", "num_classes", "state_dict", "classes")


def save_checkpoint(path: Path | str, family, model, *, classes: list[str], recipe, seed: int,
                    training: dict[str, Any], protocol: str, scores: dict[str, Any], selection: str,
                    crop_window=None) -> Path:
    """Write `model` (a module of `family`) and its provenance to `path`, whole or not at all.

    `crop_window`: the framing its flow inputs were cut to (edge/perception/composite_framing.py), which
    `mestream export` declares so that the classify stage re-cuts live crops the same way; None: crops as they come."""
    torch = require("torch", "train")
    checkpoint = {
        "family": family.name,
        "num_classes": len(classes),
        "state_dict": model.state_dict(),
        "classes": list(classes),
        "inputs": [asdict(spec) for spec in family.inputs],
        "recipe": asdict(recipe),
        "seed": seed,
        "training": dict(training),
        "protocol": protocol,
        "scores": scores,
        "selection": selection,
        "crop_window": None if crop_window is None else [float(v) for v in crop_window],
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint written by `mestream train --fit-all` (DIR/model.pt, or DIR), with one-line errors."""
    torch = require("torch", "train")
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise MestreamError(f"checkpoint {path} does not exist; give DIR/model.pt written by `mestream train --fit-all`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises pickle/zip errors of many types for a bad file
        raise MestreamError(f"checkpoint {path} cannot be read ({type(exc).__name__}); give a model.pt written by `mestream train`") from None
    if not isinstance(ckpt, dict):
        raise MestreamError(f"checkpoint {path} holds a {type(ckpt).__name__}, expected the dict written by `mestream train`")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise MestreamError(f"checkpoint {path} lacks {', '.join(missing)}; it was not written by `mestream train --fit-all`")
    return ckpt


def load_model(path: Path | str):
    """(family, model in eval mode with the checkpoint's weights, the checkpoint dict)."""
    from trainer.models.registry import get_family

    ckpt = load_checkpoint(path)
    family = get_family(ckpt["family"])
    model = family.build(int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MestreamError(f"checkpoint {path}: weights do not fit family {family.name!r} ({first})") from None
    return family, model.eval(), ckpt
