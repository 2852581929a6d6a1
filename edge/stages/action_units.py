"""Action units in every event: a second small artifact, run by the classify stage in the infer process.

The AU artifact (engines/default/mestream-au.onnx, made by benchmarks/action_units.py with trainer/action_units.py)
has task "action_units": one flow input, "probs" = one independent probability per FACS action unit, and a
threshold per AU in its metadata. When its flow parameters and input side are the classifier's, it reads the
very flow the classifier read (no second TV-L1: the AU model costs well under a millisecond); otherwise it makes
its own with the parameters it records. Each event then carries

    "action_units": {"AU1": 0.03, "AU4": 0.91, ...}       every AU the model knows, probability 0..1
    "action_units_active": ["AU4"]                        those at or above their threshold, in FACS order

Chosen with `action_units` in [stages.classify] (or `mestream run --action-units`): "default" (the packaged
model), "off" (events without AU fields), or the path of another AU artifact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import MestreamError

log = logging.getLogger(__name__)

DEFAULT = "default"
OFF = "off"


def au_artifact_path(choice: str) -> Path | None:
    """The AU artifact a [stages.classify] `action_units` value names; None for "off"."""
    choice = str(choice).strip()
    if choice in ("", OFF):
        return None
    if choice == DEFAULT:
        from engines import default_au_artifact_path

        return default_au_artifact_path()
    path = Path(choice)
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise MestreamError(f"action_units = {choice!r} is not an existing .onnx file; expected \"default\", \"off\" "
                            "or the path of an AU artifact made by benchmarks/action_units.py --export")
    return path


def with_action_units(topology: Any, choice: str | None) -> Any:
    """`topology` with [stages.classify] action_units = `choice` (the --action-units flag); as is for None."""
    if choice is None:
        return topology
    from dataclasses import replace

    au_artifact_path(choice)  # a bad value is refused here, in one line, before anything starts
    classify = {**topology.stage_options.get("classify", {}), "action_units": str(choice)}
    return replace(topology, stage_options={**topology.stage_options, "classify": classify})


def check_au_meta(meta: Any, where: Path) -> None:
    """An AU artifact: task action_units, one flow input, a threshold for every AU; else one line why not."""
    if getattr(meta, "task", "classes") != "action_units":
        raise MestreamError(f"{where} is a {getattr(meta, 'task', 'classes')!r} artifact, not an action-unit model; "
                            "point action_units to an artifact whose task is action_units (or \"default\")")
    if len(meta.inputs) != 1:
        raise MestreamError(f"AU artifact {where} has inputs {[s.name for s in meta.inputs]}; expected one flow input")
    missing = [c for c in meta.classes if c not in meta.thresholds]
    if missing:
        raise MestreamError(f"AU artifact {where} has no threshold for {missing[0]}; re-export it")


def _same_flow(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both artifacts' flow blocks (algorithm, parameters, form) are the same, so is the flow they read."""
    keys = ("algorithm", "params", "form", "crop_window")
    return bool(a) and {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}


class ActionUnits:
    """The AU engine of one classify stage. `score(onset, apex, flows)` -> (probabilities (K,), ms)."""

    def __init__(self, engine: Any, classifier_flow: dict[str, Any], classifier_side: int | None,
                 flow_fn: Callable[..., np.ndarray] | None = None) -> None:
        from edge.stages.classify import _flow_params, flow_side

        self.engine = engine
        meta = engine.meta
        check_au_meta(meta, getattr(meta, "path", None) or "AU artifact")
        self.names = list(meta.classes)
        self.thresholds = np.array([meta.thresholds[c] for c in self.names], np.float64)
        self.spec = meta.inputs[0]
        self.side = flow_side(tuple(self.spec.shape))
        # the classifier's flow is reused when it is made the same way at the same side
        self.shares_flow = classifier_side == self.side and _same_flow(meta.flow, classifier_flow)
        self._flow_params = _flow_params(meta.flow)
        from edge.stages.classify_input import crop_window, flow_function

        # the classifier's flow function (a test may hand in its own) when both cut the crops alike, else the
        # one the AU artifact's own metadata asks for
        same_cut = crop_window(meta.flow) == crop_window(classifier_flow)
        self._flow_fn = flow_fn if flow_fn is not None and same_cut else flow_function(meta.flow)
        log.info("action units %s (%s)", ", ".join(self.names),
                 "on the classifier's flow" if self.shares_flow else "on a flow of their own: another TV-L1 per event")

    def score(self, onset: np.ndarray, apex: np.ndarray, classifier_flow: np.ndarray | None) -> tuple[np.ndarray, float]:
        """The AU probabilities of one interval; `classifier_flow` (3, S, S) is used when shared."""
        from edge.stages.classify import _as_input

        t0 = time.perf_counter_ns()
        if self.shares_flow and classifier_flow is not None:
            flow = classifier_flow
        else:
            flow = self._flow_fn(onset, apex, self._flow_params, size=self.side)
        probs = np.asarray(self.engine.infer({self.spec.name: _as_input(flow, tuple(self.spec.shape), self.spec.name)})["probs"],
                           dtype=np.float64).reshape(-1)
        if probs.size != len(self.names):
            raise MestreamError(f"AU engine gave {probs.size} probabilities for {len(self.names)} action units; "
                                "the AU artifact is inconsistent")
        return probs, (time.perf_counter_ns() - t0) / 1e6

    def fields(self, probs: np.ndarray) -> dict[str, Any]:
        """The event's AU fields for these probabilities."""
        return {
            "action_units": {name: round(float(p), 6) for name, p in zip(self.names, probs)},
            "action_units_active": [name for name, p, t in zip(self.names, probs, self.thresholds) if p >= t],
        }

    def close(self) -> None:
        self.engine.close()


def open_action_units(choice: str, engine_factory: Callable[[Path], Any], classifier_flow: dict[str, Any],
                      classifier_side: int | None, flow_fn: Callable[..., np.ndarray] | None = None) -> ActionUnits | None:
    """The AU engine that `choice` names, opened with `engine_factory`; None when it is "off"."""
    path = au_artifact_path(choice)
    if path is None:
        return None
    engine = engine_factory(path)
    try:
        return ActionUnits(engine, classifier_flow, classifier_side, flow_fn)
    except BaseException:
        engine.close()
        raise
