"""infer: an "interval" (onset and apex crops) -> flow input -> engine -> the event published to subscribers.

The recognition input is made by the shared perception code (`edge.perception.flow.flow_input`, the same
function the trainer uses), with the flow parameters the artifact's metadata records and on the crops cut as
it declares (edge/stages/classify_input.py), and laid out as the artifact's input spec says. The engine is
opened once, in `open()`, in the process that runs it.
The event built here is the header of an "event" message; the publish stage sends it as JSON
(edge/schema/event.schema.json).

    stage = Classify(Path("engines/default/mestream-default.onnx")); stage.open(); stage.process(interval)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.messages import Message
from engines.errors import MestreamError

log = logging.getLogger(__name__)

EVENT_SCHEMA = "mestream.event"
EVENT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ClassifyOptions:
    min_score: float = 0.0  # intervals the spotter scored below this are not classified (0 = all)
    # Classify a "candidate" (sent by the spotter once the apex is fixed, before the offset) at once and
    # publish its result when the "interval" with the same onset/apex crops comes: the flow, the costly
    # part, is then off the offset->result path. false: candidates are dropped on arrival.
    speculate: bool = True
    speculate_cache: int = 8  # candidate results kept at most (oldest dropped first)
    # action units in every event (edge/stages/action_units.py): "default" = the packaged AU model, "off", or
    # the path of another AU artifact
    action_units: str = "default"

    def __post_init__(self) -> None:
        if not isinstance(self.speculate_cache, int) or self.speculate_cache < 1:
            raise MestreamError(f"classify speculate_cache = {self.speculate_cache!r}: expected an integer >= 1, e.g. 8")


@dataclass(frozen=True)
class Scores:
    """What the engine made of one pair of crops, and what it cost (ms)."""

    probs: np.ndarray
    flow_ms: float
    prep_ms: float
    classify_ms: float
    action_units: np.ndarray | None = None  # AU probabilities, when an AU model runs
    action_units_ms: float = 0.0


def _point_key(h: dict[str, Any]) -> tuple[int, int, int, int, int]:
    onset, apex = h.get("onset") or {}, h.get("apex") or {}
    return (int(onset.get("seq", -1)), int(onset.get("t_capture_ns") or 0), int(apex.get("seq", -1)), int(apex.get("t_capture_ns") or 0),
            int(h.get("face_id", 0) or 0))


class SpeculativeResults:
    """Scores computed from "candidate" messages, waiting for the "interval" with the same onset and apex.

    Keyed by the onset/apex seq and capture time and the face_id; a hit also needs the very same crops (the scores are a
    function of them), so an interval's event is the one its own crops would give. When an interval comes,
    every candidate of its face's event or of an earlier one (onset at or before the interval's offset) is dropped:
    a candidate whose apex was overtaken by a higher peak is never used. At most `capacity` are kept.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[int, int, int, int, int], tuple[dict[str, np.ndarray], Scores]] = {}
        self.hits = 0
        self.misses = 0  # intervals that found no usable candidate (computed on arrival)
        self.wasted = 0  # candidates dropped unused

    def put(self, msg: Message, scores: Scores) -> None:
        key = _point_key(msg.header)
        self._entries.pop(key, None)
        self._entries[key] = ({name: np.array(a, copy=True) for name, a in msg.arrays.items()}, scores)
        while len(self._entries) > self.capacity:
            self._entries.pop(next(iter(self._entries)))
            self.wasted += 1

    def take(self, msg: Message) -> Scores | None:
        key = _point_key(msg.header)
        entry = self._entries.pop(key, None)
        found = None
        if entry is not None:
            arrays, scores = entry
            if arrays.keys() == msg.arrays.keys() and all(np.array_equal(arrays[n], msg.arrays[n]) for n in arrays):
                found = scores
            else:
                self.wasted += 1
        offset = int((msg.header.get("offset") or {}).get("seq", -1))
        for stale in [k for k in self._entries if k[0] <= offset and k[4] == key[4]]:  # this face's only
            del self._entries[stale]
            self.wasted += 1
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        log.debug("interval onset %d apex %d: %s", key[0], key[2], "scored ahead" if found is not None else "scored now")
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def summary(self) -> str:
        return f"{self.hits} hits, {self.misses} misses, {self.wasted + len(self)} candidates unused"


def score_message(msg: Message, options: ClassifyOptions, cache: SpeculativeResults,
                  score: Callable[[Message, np.ndarray, np.ndarray], Scores]) -> Scores | None:
    """The scores of an "interval" (computed now, or taken from its candidate), or None when there is no
    event to publish: a candidate (scored and cached when speculating, else dropped) or a low score."""
    if msg.topic == "candidate" and not options.speculate:
        return None
    crops = crops_to_classify(msg, options.min_score)
    if crops is None:
        return None
    if msg.topic == "candidate":
        cache.put(msg, score(msg, *crops))
        return None
    found = cache.take(msg) if options.speculate else None
    return found if found is not None else score(msg, *crops)


def open_au_engine(path: Path):
    """The AU model runs on ONNX Runtime whatever runs the classifier: it is a few multiply-adds."""
    from engines.base import open_engine

    return open_engine(path, backend="ort")


def _default_flow_fn(flow_meta: dict[str, Any]) -> Callable[..., np.ndarray]:
    from edge.stages.classify_input import flow_function

    return flow_function(flow_meta)


def _flow_params(flow_meta: dict[str, Any]):
    from edge.perception.flow import TVL1Params

    params = flow_meta.get("params") or {}
    if not isinstance(params, dict):
        raise MestreamError(f"artifact flow params {params!r} are not a table; re-export the artifact")
    try:
        return TVL1Params(**params)
    except TypeError as exc:
        raise MestreamError(f"artifact flow params {sorted(params)} do not match this mestream's TVL1Params ({exc}); re-export the artifact with this version") from None


def flow_side(shape: tuple[int, ...]) -> int:
    """The side S of a flow input shaped (..., 3, S, S) or (..., S, S, 3): NCHW or NHWC artifacts."""
    return shape[-1] if shape[-1] > 3 else shape[-2]


def _channels(shape: tuple[int, ...]) -> int:
    """Channels of an image input shaped (1, C, H, W) or (1, H, W, C), C being 1 or 3."""
    return shape[1] if shape[1] in (1, 3) else shape[-1]


def crops_to_classify(msg: Message, min_score: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The (onset, apex) crops of an interval worth classifying; None when its score is under `min_score`."""
    h = msg.header
    if float(h.get("score", 0.0) or 0.0) < min_score:
        return None
    onset, apex = msg.arrays.get("onset"), msg.arrays.get("apex")
    if onset is None or apex is None:
        raise MestreamError(f"interval message at apex {h.get('apex')} lacks its onset/apex crops; the spot stage must send both")
    return onset, apex


def _as_input(array: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Lay out an (S, S, C) or (C, S, S) array as the input spec's (1, C, S, S) or (1, S, S, C)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    target = tuple(shape[1:]) if len(shape) == 4 else tuple(shape)
    if array.shape == target:
        return array.reshape(shape)
    for source in (-1, 0):  # channels-last -> channels-first, or the other way round
        moved = np.moveaxis(array, source, 0 if source == -1 else -1)
        if moved.shape == target:
            return np.ascontiguousarray(moved).reshape(shape)
    raise MestreamError(f"engine input {name!r} expects {list(shape)}, the flow code gave {list(array.shape)}; the artifact and this runtime disagree: re-export the artifact")


class Classify:
    """A Stage: "interval" -> "event" (header = the event JSON); a "candidate" is scored ahead and kept for
    its interval (`ClassifyOptions.speculate`). Other topics pass through untouched."""

    name = "classify"

    def __init__(
        self,
        artifact: Path | str,
        *,
        options: ClassifyOptions = ClassifyOptions(),
        engine_factory: Callable[[Path], Any] | None = None,
        flow_fn: Callable[..., np.ndarray] | None = None,
        flow_params: Any = None,
        au_engine_factory: Callable[[Path], Any] | None = None,
    ) -> None:
        self.artifact = Path(artifact)
        self._au_engine_factory = au_engine_factory or open_au_engine
        self.options = options
        self._engine_factory = engine_factory
        self._flow_fn = flow_fn
        self._engine = None
        self._flow_params = flow_params
        self._au = None
        self.classified = 0
        self.speculated = SpeculativeResults(options.speculate_cache)

    def open(self) -> None:
        if self._engine_factory is None:
            from engines.base import open_engine

            self._engine_factory = open_engine
        self._engine = self._engine_factory(self.artifact)
        meta = self._engine.meta
        self._plan = [self._input_plan(spec) for spec in self._engine.input_spec()]
        if any(kind == "flow" for kind, _ in self._plan) and self._flow_fn is None:
            # The shared perception code, with the parameters the model was trained with.
            self._flow_fn = _default_flow_fn(meta.flow)
            self._flow_params = _flow_params(meta.flow)
        self._classes = list(meta.classes)
        from edge.stages.action_units import open_action_units

        flow_sides = [flow_side(tuple(spec.shape)) for kind, spec in self._plan if kind == "flow"]
        self._au = open_action_units(self.options.action_units, self._au_engine_factory, meta.flow,
                                     flow_sides[0] if flow_sides else None, self._flow_fn if flow_sides else None)

    @staticmethod
    def _input_plan(spec) -> tuple[str, Any]:
        text = f"{spec.name} {spec.meaning}".lower()
        if "flow" in text or "strain" in text:
            return "flow", spec
        if "apex" in text or "texture" in text or "rgb" in text:
            return "apex", spec
        raise MestreamError(f"artifact input {spec.name!r} ({spec.meaning or 'no meaning given'}) is neither a flow nor an apex input; this runtime cannot feed it")

    def close(self) -> None:
        if self._au is not None:
            self._au.close()
            self._au = None
        if self._engine is not None:
            log.info("classify: %d events; speculation %s", self.classified, self.speculated.summary())
            self._engine.close()
            self._engine = None

    def process(self, msg: Message) -> list[Message]:
        if msg.topic not in ("interval", "candidate"):
            return [msg]
        if self._engine is None:
            raise MestreamError("the classify stage was fed before open(); call open() first")
        scores = score_message(msg, self.options, self.speculated, self._score)
        if scores is None:
            return []
        self.classified += 1
        return [Message("event", build_event(msg.header, scores.probs, self._classes, self._engine.meta, flow_ms=scores.flow_ms,
                                             prep_ms=scores.prep_ms, classify_ms=scores.classify_ms,
                                             action_units=au_fields(self._au, scores)))]

    def _score(self, msg: Message, onset: np.ndarray, apex: np.ndarray) -> Scores:
        t0 = time.perf_counter_ns()
        inputs: dict[str, np.ndarray] = {}
        t_flow = 0
        flow = None
        for kind, spec in self._plan:
            shape = tuple(spec.shape)
            if kind == "flow":
                tf = time.perf_counter_ns()
                flow = self._flow_fn(onset, apex, self._flow_params, size=flow_side(shape))
                t_flow += time.perf_counter_ns() - tf
                inputs[spec.name] = _as_input(flow, shape, spec.name)
            else:
                inputs[spec.name] = self._apex_input(msg, shape, spec.name)
        t1 = time.perf_counter_ns()
        probs = np.asarray(self._engine.infer(inputs)["probs"], dtype=np.float64).reshape(-1)
        t2 = time.perf_counter_ns()
        if probs.size != len(self._classes):
            raise MestreamError(f"engine gave {probs.size} probabilities for {len(self._classes)} classes; the artifact is inconsistent")
        au_probs, au_ms = self._au.score(onset, apex, flow) if self._au is not None else (None, 0.0)
        return Scores(probs, flow_ms=t_flow / 1e6, prep_ms=(t1 - t0 - t_flow) / 1e6, classify_ms=(t2 - t1) / 1e6,
                      action_units=au_probs, action_units_ms=au_ms)

    @property
    def wants_colour(self) -> bool:
        """Whether an input of the open artifact reads the apex in colour (then track must send colour crops)."""
        return any(kind == "apex" and _channels(tuple(spec.shape)) == 3 for kind, spec in self._plan)

    @staticmethod
    def _apex_input(msg: Message, shape: tuple[int, ...], name: str) -> np.ndarray:
        import cv2

        channels = _channels(shape)
        side = (shape[-2], shape[-1]) if shape[1] in (1, 3) else (shape[1], shape[2])
        image = msg.arrays.get("apex_color") if channels == 3 and "apex_color" in msg.arrays else msg.arrays["apex"]
        if channels == 3 and image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if channels == 1 and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        image = cv2.resize(image, (side[1], side[0]), interpolation=cv2.INTER_AREA)
        return _as_input(image.astype(np.float32) / 255.0, shape, name)


def au_fields(au: Any, scores: Scores) -> dict[str, Any] | None:
    """The event's AU fields and their cost, or None without an AU model (shared by the CPU and GPU paths)."""
    if au is None or scores.action_units is None:
        return None
    return {**au.fields(scores.action_units), "ms": scores.action_units_ms}


def build_event(h: dict[str, Any], probs: np.ndarray, classes: list[str], meta: Any, *, flow_ms: float, prep_ms: float,
                classify_ms: float, action_units: dict[str, Any] | None = None) -> dict[str, Any]:
    """The published event for an "interval" header and the engine's probabilities (shared by the CPU and GPU paths).

    `action_units` ({"action_units", "action_units_active", "ms"}, from `au_fields`) adds the AU fields."""
    best = int(np.argmax(probs))
    latency: dict[str, float] = {}
    for name, t_in, t_out in h.get("stamps", []):
        latency[str(name)] = round((int(t_out) - int(t_in)) / 1e6, 3)
    latency.update(flow=round(flow_ms, 3), prepare=round(prep_ms, 3), classify=round(classify_ms, 3))
    if action_units is not None:
        latency["action_units"] = round(float(action_units["ms"]), 3)

    def point(key: str) -> dict[str, int]:
        p = h.get(key) or {}
        return {"frame": int(p.get("seq", -1)), "t_capture_ns": int(p.get("t_capture_ns") or 0)}

    onset, apex, offset = point("onset"), point("apex"), point("offset")
    fps = float(h.get("fps", 0.0) or 0.0)
    if fps > 0 and 0 <= onset["frame"] <= offset["frame"]:
        # in the source's time, as the spotter measured it to choose micro or macro: a file read --fast
        # is captured faster than it plays, so its capture stamps would shrink the expression
        duration_s = (offset["frame"] - onset["frame"]) / fps
    else:
        duration_s = max(0, offset["t_capture_ns"] - onset["t_capture_ns"]) / 1e9
    event = {
        "schema": EVENT_SCHEMA,
        "version": EVENT_SCHEMA_VERSION,
        "kind": str(h.get("kind", "micro")),
        "label": classes[best],
        "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs)},
        "spot_score": float(h.get("score", 0.0) or 0.0),
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "duration_s": round(duration_s, 4),
        "fps": fps,
        "face_box": [int(v) for v in (h.get("box") or [0, 0, 0, 0])],
        "model": {"id": meta.model_id, "family": meta.family},
        "latency_ms": latency,
    }
    if "flow_onset" in h:  # the frame the flow started from (interval_message always names it)
        event["flow_onset"] = point("flow_onset")
    if action_units is not None:
        event["action_units"] = action_units["action_units"]
        event["action_units_active"] = action_units["action_units_active"]
    if h.get("revises"):
        event["revises"] = {"onset": int(h["revises"]["onset"]), "offset": int(h["revises"]["offset"])}
    if "source" in h:
        event["source"] = str(h["source"])
    if "face_id" in h:
        event["face_id"] = int(h["face_id"])
    return event
