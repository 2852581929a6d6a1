"""torch -> ONNX export of every trained model, as a self-describing artifact that checks its own output.

    artifact = export_checkpoint("runs/ststnet/model.pt", "ststnet.onnx")     # a classifier checkpoint
    artifact = export_model(model, family="ststnet", inputs=..., classes=..., out="ststnet.onnx")
    artifact = export_artifact(module, family="softnet", inputs=..., outputs=..., ...)   # any artifact

`export_artifact` is the one export path: opset 17 through the TorchScript exporter (`dynamo=False`: the
dynamo exporter needs onnxscript and gives no benefit for these small static graphs), then checks before
anything is written: onnx's full checker, static shapes, every operator in TensorRT's ONNX-parser allow-list,
output shapes as declared, and ONNX Runtime against torch within `atol` on probe inputs. The file is written
to a temporary name and renamed, so a failed export leaves nothing behind.

A classifier (`export_model`) takes the family's inputs by name (batch 1, static shapes, float32) and returns
"logits" (1, C) and "probs" (1, C) (softmax inside the graph, so no runtime has to re-implement it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engines.artifact import METADATA_KEY, Artifact, TensorInfo
from engines.errors import MestreamError
from engines.files import atomic_write, utc_stamp
from engines.onnx_ops import check_trt_ops
from engines.optional import require

OPSET = 17
OUTPUT_NAMES = ("logits", "probs")
# The recognition input as the literature (STSTNet/HTNet) defines it; edge/perception/flow.py makes it.
FLOW_FORM = "onset->apex u, v, optical strain, each min-max scaled to [0,1], 28x28"
FLOW_ALGORITHM = "tvl1"

Probe = Callable[[np.random.Generator, tuple[TensorInfo, ...]], dict[str, np.ndarray]]


def graph_sha256(model) -> str:
    """sha256 of the ONNX model serialised without metadata_props: the model's identity."""
    bare = type(model)()
    bare.CopyFrom(model)
    del bare.metadata_props[:]
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def flow_description() -> dict[str, Any]:
    """The flow block of a classifier's metadata: the runtime's own TV-L1 (edge/perception/flow.py).

    params_dict() = {"algorithm", "form", **asdict(TVL1Params())}: the runtime rebuilds TVL1Params(**params)
    from the metadata, so params holds exactly the dataclass fields.
    """
    from edge.perception.flow import params_dict

    params = dict(params_dict())
    algorithm, form = params.pop("algorithm"), params.pop("form")
    return {"algorithm": algorithm, "params": params, "form": form}


def framed_flow(flow: dict[str, Any], window) -> dict[str, Any]:
    """A flow block declaring that the aligned crops are re-cut to `window` before the flow (classify_input.py)."""
    from edge.perception.composite_framing import FRAMED_FLOW_FORM, check_window

    return {**flow, "crop_window": list(check_window(window)), "form": FRAMED_FLOW_FORM}


def framed_for_composite(artifact_path: Path | str, out: Path | str) -> Artifact:
    """Re-declare an artifact trained on the composite's flow images to be fed crops re-cut to the composite's
    framing (edge/perception/composite_framing.py): flow.crop_window, flow.form and the flow input's
    normalisation change; the graph, its weights and the model id do not. (A checkpoint that records its
    crop_window is exported so declared in the first place.)"""
    from dataclasses import replace

    from edge.perception.composite_framing import COMPOSITE_WINDOW
    from engines.artifact import read_artifact

    onnx = require("onnx", "train")
    artifact = read_artifact(artifact_path)
    flow = framed_flow(artifact.flow, COMPOSITE_WINDOW)
    inputs = tuple(replace(spec, normalisation=flow["form"]) if spec.name == "flow" else spec
                   for spec in artifact.inputs)
    framed = replace(artifact, flow=flow, inputs=inputs, path=None)
    proto = onnx.load(str(artifact_path))
    kept = [(e.key, e.value) for e in proto.metadata_props if e.key != METADATA_KEY]
    del proto.metadata_props[:]
    for key, value in kept:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if graph_sha256(proto) != artifact.model_id:
        raise MestreamError(f"{artifact_path}: its graph does not hash to its model id; re-export it")
    atomic_write(Path(out), serialize_with_metadata(proto, framed))
    return replace(framed, path=Path(out))


def versions() -> dict[str, Any]:
    """The versions an artifact records: mestream, torch, onnx and the opset."""
    from importlib import metadata

    try:
        mestream_version = metadata.version("mestream")
    except metadata.PackageNotFoundError:
        mestream_version = "unknown"
    return {
        "mestream": mestream_version,
        "torch": require("torch", "train").__version__,
        "onnx": require("onnx", "train").__version__,
        "opset": OPSET,
    }


def serialize_with_metadata(proto, artifact: Artifact) -> bytes:
    """The ONNX file's bytes with the artifact's metadata under METADATA_KEY, where every runtime reads it."""
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = artifact.to_text()
    return proto.SerializeToString()


def uniform_probe(rng: np.random.Generator, inputs: tuple[TensorInfo, ...]) -> dict[str, np.ndarray]:
    """Inputs in [0, 1]: min-max scaled flow and apex intensities, the classifiers' range."""
    return {info.name: rng.random(info.shape, dtype=np.float32) for info in inputs}


def _as_tuple(outputs) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def export_artifact(
    module,
    *,
    family: str,
    inputs: tuple[TensorInfo, ...],
    outputs: tuple[TensorInfo, ...],
    classes: tuple[str, ...] | list[str],
    out: Path | str,
    flow: dict[str, Any],
    training: dict[str, Any] | None = None,
    protocol: Any = None,
    scores: dict[str, Any] | None = None,
    selection: Any = None,
    atol: float = 1e-4,
    seed: int = 0,
    probe: Probe = uniform_probe,
) -> Artifact:
    """Export `module` (forward(*inputs) -> outputs, in the order given) to `out`; return the artifact's metadata.

    The declared shapes are the graph's (batch 1, static). `probe(rng, inputs)` draws the inputs on which
    ONNX Runtime must agree with torch (three draws from `seed`).
    """
    torch = require("torch", "train")
    onnx = require("onnx", "train")
    out = Path(out)
    module = module.eval()
    dummy = tuple(torch.zeros(info.shape, dtype=torch.float32) for info in inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo; it is still the right tool here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(
                module,
                dummy,
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[info.name for info in inputs],
                output_names=[info.name for info in outputs],
                do_constant_folding=True,
            )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    for graph_input in proto.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim]
        if any(d is None for d in dims):
            raise MestreamError(f"export of {family}: input {graph_input.name!r} has a dynamic dimension {dims}; shapes must be static")
    check_trt_ops(proto, what=f"model {family!r}")
    with torch.no_grad():
        produced = _as_tuple(module(*dummy))
    for info, tensor in zip(outputs, produced):
        if tuple(tensor.shape) != tuple(info.shape):
            raise MestreamError(
                f"export of {family}: forward() returns {info.name} of shape {list(tensor.shape)}, expected "
                f"{list(info.shape)}" + (f" for classes {list(classes)}" if info.name == "logits" else "")
            )
    artifact = Artifact(
        family=family,
        model_id=graph_sha256(proto),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        classes=tuple(str(c) for c in classes),
        flow=flow,
        training=dict(training or {}),
        protocol=protocol,
        scores=dict(scores or {}),
        selection=selection,
        versions=versions(),
        created=utc_stamp(),
    )
    data = serialize_with_metadata(proto, artifact)
    _check_against_onnxruntime(module, data, inputs, outputs, atol=atol, seed=seed, family=family, probe=probe)
    atomic_write(out, data)
    return dataclasses.replace(artifact, path=out)


def _check_against_onnxruntime(module, data: bytes, inputs: tuple[TensorInfo, ...], outputs: tuple[TensorInfo, ...],
                               *, atol: float, seed: int, family: str, probe: Probe) -> None:
    """ONNX Runtime must agree with torch on probe inputs; otherwise the export is refused."""
    torch = require("torch", "train")
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [info.name for info in outputs]
    rng = np.random.default_rng(seed)
    for trial in range(3):
        feed = probe(rng, inputs)
        with torch.no_grad():
            expected = [t.numpy() for t in _as_tuple(module(*(torch.from_numpy(feed[i.name]) for i in inputs)))]
        got = session.run(names, feed)
        for name, want, have in zip(names, expected, got):
            err = float(np.max(np.abs(want - have)))
            if not err <= atol:
                raise MestreamError(
                    f"export of {family}: ONNX Runtime differs from torch on {name!r} by {err:.2e} (> {atol:.0e}) "
                    f"on random input {trial}; the graph is not exportable as is"
                )


def _with_probs(model):
    torch = require("torch", "train")

    class WithProbs(torch.nn.Module):
        """The exported graph: the family's forward, plus softmax so every runtime gets probabilities."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            logits = self.inner(*inputs)
            return logits, torch.softmax(logits, dim=1)

    return WithProbs(model).eval()


def _input_infos(inputs: list[dict[str, Any]], flow: dict[str, Any]) -> tuple[TensorInfo, ...]:
    infos = []
    for spec in inputs:
        name = str(spec["name"])
        meaning = str(spec.get("meaning", ""))
        normalisation = spec.get("normalisation") or (flow.get("form", FLOW_FORM) if name == "flow" else meaning)
        infos.append(TensorInfo(name, (1, *(int(d) for d in spec["shape"])), "float32", meaning, str(normalisation)))
    return tuple(infos)


def export_model(
    model,
    *,
    family: str,
    inputs: list[dict[str, Any]],
    classes: list[str],
    out: Path | str,
    training: dict[str, Any] | None = None,
    protocol: Any = None,
    scores: dict[str, Any] | None = None,
    selection: Any = None,
    atol: float = 1e-4,
    seed: int = 0,
    crop_window=None,
) -> Artifact:
    """Export a classifier (forward(*inputs) -> logits) with "logits" and "probs" outputs.

    `inputs` are [{"name", "shape" (without batch), "meaning", optional "normalisation"}] in forward()'s order.
    `crop_window`: the framing the model was trained on, declared in the flow block (see framed_flow).
    """
    flow_block = flow_description()
    if crop_window is not None:
        flow_block = framed_flow(flow_block, crop_window)
    outputs = tuple(
        TensorInfo(name, (1, len(classes)), "float32", meaning, "")
        for name, meaning in zip(OUTPUT_NAMES, ("raw class scores", "softmax of logits, sums to 1"))
    )
    return export_artifact(
        _with_probs(model), family=family, inputs=_input_infos(inputs, flow_block), outputs=outputs,
        classes=classes, out=out, flow=flow_block, training=training, protocol=protocol, scores=scores,
        selection=selection, atol=atol, seed=seed,
    )


def export_checkpoint(checkpoint: Path | str, out: Path | str, *, atol: float = 1e-4) -> Artifact:
    """Rebuild the model a checkpoint describes, load its weights and export it to `out`."""
    from trainer.checkpoint import load_model

    family, model, ckpt = load_model(checkpoint)
    inputs = ckpt.get("inputs") or [
        {"name": spec.name, "shape": list(spec.shape), "meaning": spec.meaning} for spec in family.inputs
    ]
    return export_model(
        model,
        family=family.name,
        inputs=list(inputs),
        classes=list(ckpt["classes"]),
        out=out,
        training=dict(ckpt.get("training") or {}),
        protocol=ckpt.get("protocol"),
        scores=ckpt.get("scores"),
        selection=ckpt.get("selection"),
        atol=atol,
        crop_window=ckpt.get("crop_window"),
    )


def write_calibration_set(
    family_name: str,
    data_dir: Path | str,
    labels_csv: Path | str,
    out_dir: Path | str,
    *,
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, tuple[int, ...]]:
    """Save the family's training inputs as `<input>.npy` (float32, (N, *shape)) for INT8 calibration.

    The inputs are made by the trainer's own preparation from the composite, so calibration sees exactly
    the distribution the model was trained on. `limit` keeps a seeded random subset.
    """
    from trainer.data.megc2019 import load_megc2019
    from trainer.models.registry import get_family
    from trainer.train import prepare_inputs

    family = get_family(family_name)
    samples = load_megc2019(data_dir, labels_csv)
    if len(samples) == 0:
        raise MestreamError(f"no readable samples under {data_dir} for {labels_csv}; check the paths")
    arrays = prepare_inputs(family, samples)
    index = np.arange(len(samples))
    if limit is not None and limit < len(index):
        index = np.sort(np.random.default_rng(seed).choice(index, size=limit, replace=False))
    out_dir = Path(out_dir)
    shapes = {}
    for spec in family.inputs:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(arrays[spec.name][index], dtype=np.float32), allow_pickle=False)
        atomic_write(out_dir / f"{spec.name}.npy", buffer.getvalue())
        shapes[spec.name] = (len(index), *spec.shape)
    return shapes
