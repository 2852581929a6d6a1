"""The one registry of stages: a topology's stage name -> the module that builds it.

Every stage module exports `build(options, run, resume_seq) -> Stage | Source`: it turns the stage's
[stages.NAME] table (unknown keys and wrong types refused in one line) and the run's options into a
constructed, not yet opened, stage. The registry holds module names only, so loading a topology imports
nothing heavy; a stage's module is imported when the stage is built.

    stage = build_stage("track", topology.stage_options.get("track", {}), run)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from engines.errors import MestreamError

if TYPE_CHECKING:
    from edge.process import RunOptions
    from edge.stages.base import Source, Stage

STAGES: dict[str, str] = {
    "capture": "edge.stages.capture",
    "track": "edge.stages.face_tracking",
    "spot": "edge.stages.spot",
    "classify": "edge.stages.classify_gpu",  # chooses the GPU or the CPU path (edge/gpu.py)
    "publish": "edge.stages.publish",
}
SOURCE_STAGES = frozenset({"capture"})  # stages that read() instead of being fed; one starts the pipeline


class StageFactory(Protocol):
    def __call__(self, options: dict[str, Any], run: RunOptions, resume_seq: int = 0) -> Stage | Source: ...


def stage_factory(name: str) -> StageFactory:
    if name not in STAGES:
        raise MestreamError(f"unknown stage {name!r}; expected one of {sorted(STAGES)}")
    return importlib.import_module(STAGES[name]).build


def build_stage(name: str, options: dict[str, Any], run: RunOptions, resume_seq: int = 0) -> Stage | Source:
    """Construct (not open) one stage from its [stages.NAME] options; bad options raise MestreamError.
    resume_seq: where a restarted source continues its numbering (a file; see edge/supervisor.py)."""
    return stage_factory(name)(options, run, resume_seq)
