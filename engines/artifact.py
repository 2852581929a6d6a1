"""The self-describing model artifact: an ONNX file whose metadata says how to feed and read it.

All metadata lives in ONE JSON blob under the ONNX `metadata_props` key "mestream" (schema
"mestream.artifact", version 1):

    {"schema": "mestream.artifact", "v": 1,
     "model": {"family", "id" (sha256 of the graph without metadata), "short"},
     "inputs": [{"name", "shape", "dtype", "meaning", "normalisation"}], "outputs": [...],
     "classes": [...], "flow": {"algorithm", "params", "form"},
     "training": {"dataset", "samples", "subjects", ...}, "protocol", "scores", "selection",
     "versions": {"mestream", "torch", "onnx", "opset"}, "created": "<UTC ISO 8601>"}

An action-unit artifact adds "task": "action_units" (its "probs" are independent sigmoid probabilities,
one per class, and the classes are FACS names "AU4") and "thresholds": {"AU4": 0.45, ...}, the probability
at or above which each AU is reported active. Without "task" an artifact is a classifier ("classes":
softmax probabilities, one label).

Reading needs neither torch nor onnx: `read_artifact` asks ONNX Runtime (which the edge runtime has)
for the model's custom metadata. Writing happens on the trainer side (trainer/export.py, with onnx).
TensorRT plans carry the same blob in a JSON sidecar (engines/trt_build.py), never inside the plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import MestreamError

SCHEMA = "mestream.artifact"
SCHEMA_VERSION = 1
METADATA_KEY = "mestream"

_REQUIRED = ("schema", "v", "model", "inputs", "outputs", "classes")
TASKS = ("classes", "action_units")


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output as the artifact describes it (shape includes the batch axis)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, "float32" for every mestream tensor
    meaning: str = ""
    normalisation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "meaning": self.meaning,
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(
            name=str(data["name"]),
            shape=tuple(int(d) for d in data["shape"]),
            dtype=str(data.get("dtype", "float32")),
            meaning=str(data.get("meaning", "")),
            normalisation=str(data.get("normalisation", "")),
        )


@dataclass(frozen=True)
class Artifact:
    """The parsed metadata of one artifact. `path` is where it was read from (None when built in memory)."""

    family: str
    model_id: str  # sha256 hex of the ONNX graph serialised without metadata_props
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    classes: tuple[str, ...]
    flow: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    protocol: Any = None
    scores: dict[str, Any] = field(default_factory=dict)
    selection: Any = None
    versions: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    path: Path | None = None
    task: str = "classes"  # "classes": softmax over exclusive classes; "action_units": one sigmoid per class
    thresholds: dict[str, float] = field(default_factory=dict)  # action_units: class -> active at or above

    @property
    def short_id(self) -> str:
        return self.model_id[:12]

    def input(self, name: str) -> TensorInfo:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise MestreamError(
            f"artifact has no input {name!r}; expected one of: {', '.join(s.name for s in self.inputs)}"
        )

    def to_json(self) -> dict[str, Any]:
        # a classifier's blob stays exactly as before the action-unit task existed
        extra = {} if self.task == "classes" else {"task": self.task, "thresholds": dict(self.thresholds)}
        return {
            **extra,
            "schema": SCHEMA,
            "v": SCHEMA_VERSION,
            "model": {"family": self.family, "id": self.model_id, "short": self.short_id},
            "inputs": [spec.to_json() for spec in self.inputs],
            "outputs": [spec.to_json() for spec in self.outputs],
            "classes": list(self.classes),
            "flow": self.flow,
            "training": self.training,
            "protocol": self.protocol,
            "scores": self.scores,
            "selection": self.selection,
            "versions": self.versions,
            "created": self.created,
        }

    def to_text(self) -> str:
        """The JSON blob stored under metadata_props["mestream"] (stable key order, compact)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any, path: Path | str | None = None) -> Artifact:
        where = f"{path}" if path is not None else "artifact metadata"
        if not isinstance(data, dict):
            raise MestreamError(f"{where}: mestream metadata is not a JSON object; re-export it with `mestream export`")
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise MestreamError(
                f"{where}: mestream metadata lacks {', '.join(missing)}; re-export it with `mestream export`"
            )
        if data["schema"] != SCHEMA:
            raise MestreamError(f"{where}: metadata schema is {data['schema']!r}, expected {SCHEMA!r}")
        if data.get("task", "classes") not in TASKS:
            raise MestreamError(f"{where}: artifact task {data['task']!r} is unknown; expected one of {', '.join(TASKS)}")
        if int(data["v"]) != SCHEMA_VERSION:
            raise MestreamError(
                f"{where}: artifact schema version {data['v']} is not supported (this mestream reads "
                f"v{SCHEMA_VERSION}); re-export the model with this version of `mestream export`"
            )
        try:
            model = data["model"]
            return cls(
                family=str(model["family"]),
                model_id=str(model["id"]),
                inputs=tuple(TensorInfo.from_json(d) for d in data["inputs"]),
                outputs=tuple(TensorInfo.from_json(d) for d in data["outputs"]),
                classes=tuple(str(c) for c in data["classes"]),
                flow=dict(data.get("flow") or {}),
                training=dict(data.get("training") or {}),
                protocol=data.get("protocol"),
                scores=dict(data.get("scores") or {}),
                selection=data.get("selection"),
                versions=dict(data.get("versions") or {}),
                created=str(data.get("created", "")),
                path=Path(path) if path is not None else None,
                task=str(data.get("task", "classes")),
                thresholds={str(k): float(v) for k, v in (data.get("thresholds") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MestreamError(
                f"{where}: malformed mestream metadata ({type(exc).__name__}: {exc}); re-export it with "
                "`mestream export`"
            ) from None

    @classmethod
    def from_text(cls, text: str, path: Path | str | None = None) -> Artifact:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MestreamError(
                f"{path or 'artifact'}: mestream metadata is not valid JSON ({exc.msg} at {exc.pos}); "
                "re-export it with `mestream export`"
            ) from None
        return cls.from_json(data, path)

    def summary(self) -> str:
        """A few human lines: what the model is, what it eats and what it was scored at."""
        lines = [f"model    {self.family} id {self.short_id}"]
        for spec in self.inputs:
            lines.append(f"input    {spec.name} {list(spec.shape)} {spec.dtype}: {spec.meaning}")
        for spec in self.outputs:
            lines.append(f"output   {spec.name} {list(spec.shape)} {spec.dtype}")
        lines.append(f"classes  {', '.join(self.classes)}")
        if self.task != "classes":
            lines.append(f"task     {self.task}, thresholds "
                         + ", ".join(f"{c} {self.thresholds.get(c, 0.5):.2f}" for c in self.classes))
        if self.flow:
            lines.append(f"flow     {self.flow.get('algorithm', '?')}: {self.flow.get('form', '')}")
        if self.training:
            lines.append(
                "training "
                + ", ".join(f"{k}={self.training[k]}" for k in ("dataset", "samples", "subjects") if k in self.training)
            )
        full = score_parts(self.scores).get("full")
        if isinstance(full, dict):
            shown = ", ".join(f"{k.upper()} {full[k]:.4f}" for k in ("uf1", "uar", "acc") if isinstance(full.get(k), (int, float)))
            lines.append(f"scores   {self.protocol} full: {shown}")
        if self.versions:
            lines.append("versions " + ", ".join(f"{k} {v}" for k, v in sorted(self.versions.items())))
        if self.created:
            lines.append(f"created  {self.created}")
        return "\n".join(lines)


def score_parts(scores: Any) -> dict[str, Any]:
    """{"full": {...}, "casme2": {...}, ...}: the trainer records either that or {"parts": that}."""
    if not isinstance(scores, dict):
        return {}
    parts = scores.get("parts", scores)
    return parts if isinstance(parts, dict) else {}


def check_is_file(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MestreamError(f"artifact {path} does not exist; give the path of a .onnx file made by `mestream export`")
    return path


def artifact_from_metadata_map(metadata: dict[str, str], path: Path | str) -> Artifact:
    """Parse the custom metadata map of an ONNX model (as ONNX Runtime returns it)."""
    if METADATA_KEY not in metadata:
        raise MestreamError(
            f"{path} is an ONNX model without mestream metadata (no {METADATA_KEY!r} key); "
            "export it with `mestream export` so the runtime knows its inputs and classes"
        )
    return Artifact.from_text(metadata[METADATA_KEY], path)


def open_ort_session(path: Path | str, providers: list[str] | None = None, threads: int | None = None):
    """An onnxruntime.InferenceSession over `path`, with one-line errors for a missing or non-ONNX file."""
    path = check_is_file(path)
    try:
        import onnxruntime as ort
    except ImportError:
        raise MestreamError("onnxruntime is not installed; it is a core dependency of mestream: pip install mestream") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT warnings about unused initialisers are not the user's problem
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types; all mean "not a loadable ONNX model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MestreamError(
            f"{path} is not a loadable ONNX model ({first[:160]}); give a .onnx file made by `mestream export`"
        ) from None


def read_artifact(path: Path | str) -> Artifact:
    """Read an artifact's metadata without torch or onnx (ONNX Runtime's model metadata only)."""
    session = open_ort_session(path)
    return artifact_from_metadata_map(dict(session.get_modelmeta().custom_metadata_map), path)
