"""torch -> ONNX export of a trained model, as a self-describing artifact that checks its own output.

    artifact = export_checkpoint("runs/ststnet/model.pt", "ststnet.onnx")

The graph takes the family's inputs by name (batch 1, static shapes, float32) and returns "logits" (1, C)
and "probs" (1, C) (softmax inside the graph, so no runtime has to re-implement it). Opset 17 through the
TorchScript exporter (`dynamo=False`: the dynamo exporter needs onnxscript and gives no benefit for these
small static graphs). Before anything is written the export is checked: onnx's full checker, static shapes,
every operator in TensorRT's ONNX-parser allow-list, and ONNX Runtime against torch within `atol` on random
inputs. The file is written to a temporary name and renamed, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from engines.artifact import METADATA_KEY, Artifact, TensorInfo
from engines.errors import MestreamError, missing_extra
from engines.files import atomic_write, utc_stamp
from engines.onnx_ops import check_trt_ops

OPSET = 17
OUTPUT_NAMES = ("logits", "probs")
# The recognition input as the literature (STSTNet/HTNet) defines it; edge/perception/flow.py makes it.
FLOW_FORM = "onset->apex u, v, optical strain, each min-max scaled to [0,1], 28x28"
FLOW_ALGORITHM = "tvl1"


def _torch():
    try:
        import torch
    except ImportError:
        raise missing_extra("torch", "train") from None
    return torch


def _onnx():
    try:
        import onnx
    except ImportError:
        raise missing_extra("onnx", "train") from None
    return onnx


def graph_sha256(model) -> str:
    """sha256 of the ONNX model serialised without metadata_props: the model's identity."""
    bare = type(model)()
    bare.CopyFrom(model)
    del bare.metadata_props[:]
    return hashlib.sha256(bare.SerializeToString(deterministic=True)).hexdigest()


def flow_description(recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flow block of the metadata: the runtime's own TV-L1 parameters when edge's flow module exists.

    Read lazily so the trainer works before (and without) edge.perception.flow; otherwise fall back to
    the parameters the checkpoint recorded.
    """
    recorded = dict(recorded or {})
    params: dict[str, Any] = dict(recorded.get("params") or {})
    form = recorded.get("form", FLOW_FORM)
    try:
        from edge.perception import flow as flow_module  # noqa: PLC0415 (optional, edge-side definition)
    except ImportError:
        flow_module = None
    algorithm = recorded.get("algorithm", FLOW_ALGORITHM)
    if flow_module is not None and hasattr(flow_module, "params_dict"):
        # params_dict() = {"algorithm", "form", **asdict(TVL1Params())}: the runtime rebuilds
        # TVL1Params(**params) from the metadata, so params holds exactly the dataclass fields
        described = dict(flow_module.params_dict())
        algorithm = described.pop("algorithm", algorithm)
        form = described.pop("form", form)
        params = described
    block = {"algorithm": algorithm, "params": params, "form": form}
    if recorded.get("crop_window") is not None:  # crops re-cut before the flow (edge/stages/classify_input.py)
        block["crop_window"] = recorded["crop_window"]
        block["form"] = recorded.get("form", form)
    return block


def framed_for_composite(artifact_path: Path | str, out: Path | str) -> Artifact:
    """Re-declare an artifact trained on the composite's flow images to be fed crops re-cut to the composite's
    framing (edge/perception/composite_framing.py): flow.crop_window, flow.form and the flow input's
    normalisation change; the graph, its weights and the model id do not."""
    from dataclasses import replace

    from edge.perception.composite_framing import COMPOSITE_WINDOW, FRAMED_FLOW_FORM
    from engines.artifact import read_artifact

    onnx = _onnx()
    artifact = read_artifact(artifact_path)
    flow = {**artifact.flow, "crop_window": list(COMPOSITE_WINDOW), "form": FRAMED_FLOW_FORM}
    inputs = tuple(replace(spec, normalisation=FRAMED_FLOW_FORM) if spec.name == "flow" else spec
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


def _versions() -> dict[str, Any]:
    from importlib import metadata

    try:
        mestream_version = metadata.version("mestream")
    except metadata.PackageNotFoundError:
        mestream_version = "unknown"
    return {
        "mestream": mestream_version,
        "torch": _torch().__version__,
        "onnx": _onnx().__version__,
        "opset": OPSET,
    }


def _with_probs(model):
    torch = _torch()

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


def serialize_with_metadata(proto, artifact: Artifact) -> bytes:
    """The ONNX file's bytes with the artifact's metadata under METADATA_KEY, where every runtime reads it."""
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = artifact.to_text()
    return proto.SerializeToString()


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
    flow: dict[str, Any] | None = None,
    atol: float = 1e-4,
    seed: int = 0,
) -> Artifact:
    """Export `model` (forward(*inputs) -> logits) to `out` and return the artifact's metadata.

    `inputs` are [{"name", "shape" (without batch), "meaning", optional "normalisation"}] in forward()'s order.
    """
    torch = _torch()
    onnx = _onnx()
    out = Path(out)
    flow_block = flow_description(flow)
    in_infos = _input_infos(inputs, flow_block)
    wrapped = _with_probs(model)
    dummy = tuple(torch.zeros(info.shape, dtype=torch.float32) for info in in_infos)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of dynamo; it is still the right tool here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            torch.onnx.export(
                wrapped,
                dummy,
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[info.name for info in in_infos],
                output_names=list(OUTPUT_NAMES),
                do_constant_folding=True,
            )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    for graph_input in proto.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim]
        if any(d is None for d in dims):
            raise MestreamError(f"export of {family}: input {graph_input.name!r} has a dynamic dimension {dims}; shapes must be static")
    check_trt_ops(proto, what=f"model {family!r}")

    num_classes = len(classes)
    with torch.no_grad():
        probe = wrapped(*dummy)[0]
    if tuple(probe.shape) != (1, num_classes):
        raise MestreamError(
            f"export of {family}: forward() returns logits of shape {list(probe.shape)}, expected [1, {num_classes}] "
            f"for classes {list(classes)}"
        )
    out_infos = tuple(
        TensorInfo(name, (1, num_classes), "float32", meaning, "")
        for name, meaning in zip(OUTPUT_NAMES, ("raw class scores", "softmax of logits, sums to 1"))
    )
    artifact = Artifact(
        family=family,
        model_id=graph_sha256(proto),
        inputs=in_infos,
        outputs=out_infos,
        classes=tuple(str(c) for c in classes),
        flow=flow_block,
        training=dict(training or {}),
        protocol=protocol,
        scores=dict(scores or {}),
        selection=selection,
        versions=_versions(),
        created=utc_stamp(),
    )
    data = serialize_with_metadata(proto, artifact)

    _check_against_onnxruntime(wrapped, data, in_infos, atol=atol, seed=seed, family=family)
    atomic_write(out, data)
    return dataclasses.replace(artifact, path=out)


def _check_against_onnxruntime(wrapped, data: bytes, infos: tuple[TensorInfo, ...], *, atol: float, seed: int, family: str) -> None:
    """ONNX Runtime must agree with torch on random inputs; otherwise the export is refused."""
    torch = _torch()
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    for trial in range(3):
        # inputs live in [0, 1] (min-max scaled flow, apex intensities); that is the range to check
        feed = {info.name: rng.random(info.shape, dtype=np.float32) for info in infos}
        with torch.no_grad():
            expected = [t.numpy() for t in wrapped(*(torch.from_numpy(feed[i.name]) for i in infos))]
        got = session.run(list(OUTPUT_NAMES), feed)
        for name, want, have in zip(OUTPUT_NAMES, expected, got):
            err = float(np.max(np.abs(want - have)))
            if not err <= atol:
                raise MestreamError(
                    f"export of {family}: ONNX Runtime differs from torch on {name!r} by {err:.2e} (> {atol:.0e}) "
                    f"on random input {trial}; the graph is not exportable as is"
                )


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint written by `mestream train --fit-all` (DIR/model.pt), with one-line errors."""
    torch = _torch()
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
    missing = [k for k in ("family", "num_classes", "state_dict", "classes") if k not in ckpt]
    if missing:
        raise MestreamError(f"checkpoint {path} lacks {', '.join(missing)}; it was not written by `mestream train --fit-all`")
    return ckpt


def export_checkpoint(checkpoint: Path | str, out: Path | str, *, atol: float = 1e-4) -> Artifact:
    """Rebuild the model a checkpoint describes, load its weights and export it to `out`."""
    from trainer.models.registry import get_family

    ckpt = load_checkpoint(checkpoint)
    family = get_family(ckpt["family"])
    model = family.build(int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MestreamError(f"checkpoint {checkpoint}: weights do not fit family {family.name!r} ({first})") from None
    model.eval()
    inputs = ckpt.get("inputs") or [
        {"name": spec.name, "shape": list(spec.shape), "meaning": spec.meaning} for spec in family.inputs
    ]
    training = dict(ckpt.get("training") or {})
    return export_model(
        model,
        family=family.name,
        inputs=list(inputs),
        classes=list(ckpt["classes"]),
        out=out,
        training=training,
        protocol=ckpt.get("protocol"),
        scores=ckpt.get("scores"),
        selection=ckpt.get("selection"),
        flow=ckpt.get("flow") or training.get("flow"),
        atol=atol,
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


LICENCE_NOTE = (
    "Trained on the MEGC2019 composite, which is derived from CASME II, SMIC-HS and SAMM. Those datasets are "
    "licensed for non-commercial research only, and so is this model: internal research use only, no "
    "redistribution outside the project, no commercial use. The raw data is not part of this package."
)


def _score_rows(scores: dict[str, Any]) -> list[str]:
    from engines.artifact import score_parts

    parts = score_parts(scores)
    rows = []
    for part in ("full", "casme2", "smic", "samm"):
        values = parts.get(part)
        if isinstance(values, dict):
            cells = [f"{values[k]:.4f}" if isinstance(values.get(k), (int, float)) else "-" for k in ("uf1", "uar", "acc")]
            rows.append(f"| {part} | " + " | ".join(cells) + " |")
    return rows


def _form_limitation(flow: dict[str, Any]) -> list[str]:
    if flow.get("crop_window") is not None:
        return ["- Trained on the composite's released flow images; at run time the flow comes from mestream's own "
                "TV-L1 (edge/perception/flow.py) on the live aligned crops re-cut to the composite's framing "
                f"(crop_window {flow['crop_window']}, edge/perception/composite_framing.py). The two follow the same recipe "
                "but are not byte-identical: on the real frames of 18 CASME II subjects held out from training (LOSO, "
                "3 seeds) the same recipe scores UF1 0.837 on this input against 0.884 on the composite's own images "
                "and 0.807 on the un-cut crops (benchmarks/results/cross_form_loso.md, settings g, a, c), so expect "
                "some loss of accuracy on live video, more with other cameras and lighting."]
    return ["- Trained on the composite's released flow images; at run time the flow comes from mestream's own TV-L1 "
            "(edge/perception/flow.py) on the live aligned crop. The two follow the same recipe but are not byte-identical, "
            "so expect some loss of accuracy on live video."]


def render_model_card(artifact: Artifact, *, command: str, size_bytes: int, summary: str = "") -> str:
    """MODEL_CARD.md for a shipped artifact, from its own metadata (nothing typed by hand can drift)."""
    training = artifact.training or {}
    lines = [
        "# mestream default model",
        "",
        f"`{artifact.path.name if artifact.path else 'artifact.onnx'}`: family **{artifact.family}**"
        + (f" ({summary})" if summary else "")
        + f", model id `{artifact.model_id}`, {size_bytes / 1024:.0f} KiB, created {artifact.created}.",
        "",
        "## What it does",
        "",
        f"Classifies one spotted micro-expression into {len(artifact.classes)} classes: "
        + ", ".join(f"`{c}`" for c in artifact.classes)
        + ". Outputs `logits` and `probs` (softmax), each (1, C).",
        "",
        "| input | shape | dtype | meaning | normalisation |",
        "|---|---|---|---|---|",
    ]
    for spec in artifact.inputs:
        lines.append(f"| `{spec.name}` | {list(spec.shape)} | {spec.dtype} | {spec.meaning} | {spec.normalisation} |")
    flow = artifact.flow or {}
    lines += [
        "",
        f"Flow at run time: `{flow.get('algorithm', '?')}` with parameters `{json.dumps(flow.get('params', {}), sort_keys=True)}`; "
        f"form: {flow.get('form', '')}.",
        "",
        "## Data",
        "",
        f"Dataset `{training.get('dataset', '?')}`: {training.get('samples', '?')} samples from "
        f"{training.get('subjects', '?')} subjects; the shipped weights are fitted on all of them with the "
        "family's fixed recipe (no held-out data, no early stopping).",
    ]
    extra = {k: v for k, v in training.items() if k not in ("dataset", "samples", "subjects", "flow")}
    if extra:
        lines.append("")
        lines.append("Training details: " + ", ".join(f"{k} = {json.dumps(v, sort_keys=True)}" for k, v in sorted(extra.items())) + ".")
    lines += [
        "",
        "## Evaluation",
        "",
        f"Protocol: `{artifact.protocol}` (leave-one-subject-out; every fold trained from scratch; UF1/UAR/accuracy on "
        "predictions pooled over all folds). The scores are those of the same recipe under that protocol, not of the "
        "shipped weights (which saw every subject).",
        "",
        "| part | UF1 | UAR | accuracy |",
        "|---|---|---|---|",
        *(_score_rows(artifact.scores) or ["| (no scores recorded) | - | - | - |"]),
        "",
        f"How epochs and hyperparameters were chosen: {artifact.selection}",
        "",
        "Published anchors on the same inputs (for scale): STSTNet 0.7353 UF1 / 0.7605 UAR; HTNet 0.8603 / 0.8475 "
        "(epoch picked on the test subject, an inflated figure).",
        "",
        "## Limitations",
        "",
        *_form_limitation(flow),
        "- Three coarse classes from lab recordings of a few dozen young adults; it has not been validated on other "
        "populations, cameras or lighting, and must not be used to judge people.",
        "",
        "## Licence",
        "",
        LICENCE_NOTE,
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(artifact.versions.items()))}.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(artifact_path: Path | str, out: Path | str, *, command: str) -> Path:
    """Render MODEL_CARD.md next to a shipped artifact (atomically)."""
    from engines.artifact import read_artifact
    from trainer.models.registry import get_family

    artifact_path = Path(artifact_path)
    artifact = read_artifact(artifact_path)
    try:
        summary = get_family(artifact.family).summary
    except (MestreamError, ImportError):
        summary = ""
    text = render_model_card(artifact, command=command, size_bytes=artifact_path.stat().st_size, summary=summary)
    atomic_write(Path(out), text.encode())
    return Path(out)
