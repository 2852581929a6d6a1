from pathlib import Path

import numpy as np
import pytest

from edge.messages import Message
from edge.spotting.learned import (
    FeatureSpec,
    LearnedSpotter,
    PeakParams,
    RunTracker,
    SpotFeatures,
    roi_layout,
    runs_to_intervals,
    smooth_scores,
)
from edge.spotting.params import SpotParams
from engines.artifact import METADATA_KEY, Artifact, TensorInfo
from engines.errors import MestreamError

SPEC = FeatureSpec(flow_size=64, roi=42, lag_s=0.1)  # k = 3 at 30 fps


def make_softnet_onnx(path: Path, spec: FeatureSpec, peaks: PeakParams, family: str = "softnet", scale: float = 1.0,
                      training: dict | None = None) -> Path:
    """A stand-in softnet artifact built with onnx.helper (no torch): score = scale * max |features|."""
    pytest.importorskip("onnx", reason="onnx comes with the [train] extra")
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, 3, spec.roi, spec.roi]
    graph = helper.make_graph(
        [
            helper.make_node("Abs", ["flow"], ["a"]),
            helper.make_node("ReduceMax", ["a"], ["m"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["m", "shape"], ["r"]),
            helper.make_node("Mul", ["r", "scale"], ["score"]),
        ],
        "stand_in_softnet",
        [helper.make_tensor_value_info("flow", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        initializer=[numpy_helper.from_array(np.array([1, 1], np.int64), "shape"),
                     numpy_helper.from_array(np.array([scale], np.float32), "scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = Artifact(family=family, model_id="0" * 64,
                    inputs=(TensorInfo("flow", tuple(shape), "float32", "u, v, strain"),),
                    outputs=(TensorInfo("score", (1, 1), "float32", "apex score"),), classes=("apex",),
                    flow={"algorithm": "dis-affine-residual", "params": spec.to_json(), "form": "test"},
                    selection={"peaks": peaks.to_json()}, training=training or {})
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_text()
    path.write_bytes(model.SerializeToString())
    return path


def _texture(seed: int = 0, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    import cv2

    return cv2.GaussianBlur(rng.integers(0, 255, (size, size)).astype(np.uint8), (0, 0), 2.0)


def _faces(n: int, moves: dict[int, float], seed: int = 0) -> list[Message]:
    """Face messages of a still textured crop whose mouth region is pushed down by moves[n] pixels."""
    import cv2

    base = _texture(seed)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    bump = np.exp(-(((xx - 64) / 18) ** 2 + ((yy - 100) / 10) ** 2)).astype(np.float32)
    out = []
    for i in range(n):
        d = moves.get(i, 0.0)
        crop = cv2.remap(base, xx, yy - d * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) if d else base
        out.append(Message("face", {"seq": i, "t_capture_ns": i * 33_333_333, "fps": 30.0, "gap": 0, "found": True,
                                    "box": [0, 0, 100, 100]}, {"crop": crop}))
    return out


def test_features_have_softnets_shape_and_zero_the_eyes_and_a_still_face_gives_little_motion():
    features = SpotFeatures(SPEC)
    a = features.prepare(_texture(1))
    assert a.shape == (64, 64) and a.dtype == np.uint8
    x = features.pair(a, a)
    assert x.shape == (3, 42, 42) and x.dtype == np.float32
    assert float(np.abs(x).max()) < 0.05
    layout = roi_layout(SPEC)
    assert layout["left"]["to"] == [0, 0, 21, 21] and layout["mouth"]["to"] == [0, 21, 42, 21]
    shifted = features.pair(a, np.roll(a, 1, axis=0))  # a shift is head motion: removed with the affine fit
    assert float(np.abs(shifted[:2]).mean()) < 0.1


def test_online_smoothing_and_runs_match_the_offline_picking():
    rng = np.random.default_rng(2)
    raw = np.clip(rng.normal(0.1, 0.05, 200), 0, None)
    raw[40:48] += 0.8
    raw[100:103] += 0.7
    raw[106:110] += 0.7  # a dip the merge gap bridges
    peaks = PeakParams(threshold=0.5, smooth=3, merge=4)
    smoothed = smooth_scores(raw, 3)
    offline = runs_to_intervals(smoothed, np.arange(200), 6, peaks, 30.0, max_event_s=4.0)
    assert [(iv["onset"], iv["offset"], iv["kind"]) for iv in offline] == [(43, 50, "micro"), (103, 112, "micro")]
    tracker = RunTracker(peaks, 120)
    runs = [r for j, s in enumerate(smoothed) for r in tracker.push(j, float(s))] + tracker.close()
    assert [(start, len(run)) for start, run in runs] == [(40, 8), (100, 10)]


def test_the_stage_spots_a_mouth_movement_as_the_offline_picking_does(tmp_path):
    peaks = PeakParams(threshold=0.35, smooth=3, merge=2)
    artifact = make_softnet_onnx(tmp_path / "s.onnx", SPEC, peaks)
    moves = {i: 2.5 * np.sin(np.pi * (i - 40) / 8) for i in range(40, 49)}
    faces = _faces(90, moves)
    stage = LearnedSpotter(SpotParams(method="learned", artifact=str(artifact)), record_trace=True)
    stage.open()
    out = [m for f in faces for m in stage.process(f)] + stage.flush()
    stage.close()
    intervals = [m for m in out if m.topic == "interval"]
    assert len(intervals) == 1
    h = intervals[0].header
    assert h["kind"] == "micro" and h["method"] == "learned"
    assert 36 <= h["onset"]["seq"] <= h["apex"]["seq"] <= h["offset"]["seq"] <= 52
    assert intervals[0].arrays["apex"].shape == (128, 128)
    # the same scores picked offline give the same interval
    features = SpotFeatures(SPEC)
    small = [features.prepare(f.arrays["crop"]) for f in faces]
    from engines.base import open_engine

    k = SPEC.k(30.0)
    with open_engine(artifact) as engine:
        raw = np.array([float(engine.infer({"flow": features.pair(small[i], small[i + k])[None]})["score"][0, 0])
                        for i in range(len(faces) - k)])
    offline = runs_to_intervals(smooth_scores(raw, 3), np.arange(len(raw)), k, peaks, 30.0, 4.0)
    assert [(iv["onset"], iv["apex"], iv["offset"]) for iv in offline] == [
        (h["onset"]["seq"], h["apex"]["seq"], h["offset"]["seq"])]
    signal = np.array([s for _, s, _ in stage.trace], dtype=np.float64)
    np.testing.assert_allclose(signal[~np.isnan(signal)], smooth_scores(raw, 3)[: int((~np.isnan(signal)).sum())], atol=1e-6)


def test_a_lost_face_or_gap_restarts_the_window_and_closes_a_run(tmp_path):
    artifact = make_softnet_onnx(tmp_path / "s.onnx", SPEC, PeakParams(threshold=0.35, smooth=1, merge=0))
    faces = _faces(40, {i: 2.5 for i in range(20, 40)})  # held: the run is open when the face goes
    lost = Message("face", {"seq": 40, "fps": 30.0, "found": False})
    stage = LearnedSpotter(SpotParams(method="learned", artifact=str(artifact)))
    out = [m for f in faces for m in stage.process(f)] + stage.process(lost)
    assert [m.topic for m in out].count("interval") == 1
    again = _faces(3, {})
    for i, m in enumerate(again):
        m.header["seq"] = 50 + i
    m = again[0]
    m.header["gap"] = 5
    assert stage.process(m) == []  # a fresh window after the lost face: nothing to restart, nothing spotted
    stage.close()


def test_the_spot_stage_is_learned_when_the_topology_says_so(tmp_path):
    from edge.process import build_stage

    artifact = make_softnet_onnx(tmp_path / "s.onnx", SPEC, PeakParams())
    stage = build_stage("spot", {"method": "learned", "artifact": str(artifact)}, run=None)
    assert isinstance(stage.new_spotter(), LearnedSpotter)  # one per face (edge/stages/spot.py)
    with pytest.raises(MestreamError, match="method 'neural' is unknown"):
        SpotParams(method="neural")
    with pytest.raises(MestreamError, match="needs artifact"):
        LearnedSpotter(SpotParams(method="learned"))
    with pytest.raises(MestreamError, match="does not exist"):
        LearnedSpotter(SpotParams(method="learned", artifact=str(tmp_path / "none.onnx")))
    wrong = make_softnet_onnx(tmp_path / "w.onnx", SPEC, PeakParams(), family="ststnet")
    stage = LearnedSpotter(SpotParams(method="learned", artifact=str(wrong)))
    with pytest.raises(MestreamError, match="'ststnet' model; the learned spotter needs a 'softnet'"):
        stage.open()


def test_the_learned_stage_runs_after_capture_and_track_on_a_short_synthetic_clip(assets, tmp_path):
    from edge.cli import main
    from edge.process import build_stage
    from edge.stages.base import run_chain
    from edge.stages.capture import Capture
    from edge.stages.face_tracking import FaceTracking

    video, truth = tmp_path / "s.mp4", tmp_path / "s.csv"
    assert main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(video), "--truth", str(truth),
                 "--seconds", "4", "--seed", "11", "--no-progress"]) == 0
    artifact = make_softnet_onnx(tmp_path / "s.onnx", FeatureSpec(), PeakParams(threshold=0.2, smooth=3, merge=3))
    spot = build_stage("spot", {"method": "learned", "artifact": str(artifact)}, run=None)
    spot.trace = []
    out = run_chain(Capture(str(video), fast=True), [FaceTracking(), spot])
    assert len(spot.trace) == 120
    assert sum(s == s for _, s, _ in spot.trace) > 100  # smoothed scores for all but the first k + 1 frames
    for m in out:
        if m.topic == "interval":
            assert m.header["onset"]["seq"] <= m.header["apex"]["seq"] <= m.header["offset"]["seq"]
            assert m.header["kind"] in ("micro", "macro")
    # spot-eval scores the same stage on the same clip
    report = tmp_path / "r.json"
    assert main(["-q", "spot-eval", "--source", str(video), "--truth", str(truth), "--artifact", str(artifact),
                 "--json", str(report)]) == 0
    import json

    doc = json.loads(report.read_text())
    assert len(doc["predicted"]) == sum(m.topic == "interval" for m in out)
    assert set(doc["scores"]) == {"micro", "macro", "overall"}


@pytest.mark.parametrize("z,merge,max_s,min_windows", [(0.0, 4, 4.0, 1), (3.0, 4, 4.0, 3), (3.0, 0, 0.3, 1), (5.0, 9, 1.0, 6)])
def test_fast_offline_picking_gives_the_runs_of_the_online_tracker(z, merge, max_s, min_windows):
    from edge.spotting.learned import adaptive_levels

    rng = np.random.default_rng(int(z * 10) + merge)
    raw = np.clip(rng.normal(0.2, 0.1, 600), 0, None) + np.repeat(rng.random(60) < 0.2, 10) * 0.6
    peaks = PeakParams(threshold=0.45, smooth=3, merge=merge, z=z, history_s=1.0, min_windows=min_windows)
    smoothed = smooth_scores(raw, 3)
    levels = adaptive_levels(smoothed, peaks, 30.0)
    for j in (0, 1, 29, 30, 31, 200, 599):  # the vectorised levels are level() over the past history windows
        assert levels[j] == pytest.approx(peaks.level(smoothed[max(0, j - 30) : j]))
    tracker = RunTracker(peaks, int(round(max_s * 30)))
    runs = [r for j, s in enumerate(smoothed) for r in tracker.push(j, float(s), float(levels[j]))] + tracker.close()
    online = [(start, len(run)) for start, run in runs if len(run) >= min_windows]  # as the stage emits them
    offline = runs_to_intervals(smoothed, np.arange(600), 6, peaks, 30.0, max_s, levels)
    assert len(online) == len(offline) > 2
    assert [(iv["onset"] - 3, iv["offset"] - iv["onset"] + 1) for iv in offline] == online


def test_the_shipped_spotter_is_a_small_softnet_artifact_trained_on_real_clips_the_stage_can_open(caplog):
    path = Path(__file__).resolve().parents[2] / "engines" / "default" / "mestream-spotter.onnx"
    assert path.is_file() and path.stat().st_size < 1_000_000
    stage = LearnedSpotter(SpotParams(method="learned", artifact=str(path)))
    with caplog.at_level("WARNING", logger="edge.spotting.learned"):
        stage.open()
    try:
        assert stage.spec == FeatureSpec() and stage.peaks.threshold > 0
        assert stage._engine.meta.training["dataset"] == "casme2-clips"
    finally:
        stage.close()
    assert not [r for r in caplog.records if "synthetic" in r.getMessage()]
    card = path.with_name("SPOTTER_CARD.md").read_text()
    assert stage._engine is None and "real CASME II micro-expression clips" in card and "SYNTHETIC" not in card


def test_a_spotter_trained_on_synthetic_videos_only_is_warned_about_once(tmp_path, caplog):
    path = make_softnet_onnx(tmp_path / "synth.onnx", SPEC, PeakParams(), training={"dataset": "synth"})
    with caplog.at_level("WARNING", logger="edge.spotting.learned"):
        for _face in range(2):  # the stage opens one spotter per face: one warning
            stage = LearnedSpotter(SpotParams(method="learned", artifact=str(path)))
            stage.open()
            stage.close()
    warned = [r.getMessage() for r in caplog.records if "synthetic" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0] and 'method = "regional"' in warned[0]


def test_runs_shorter_than_min_windows_are_not_events(tmp_path):
    faces = _faces(60, {30: 2.5})  # one jolted frame: only the two windows with it at an end score
    counts = []
    for min_windows in (1, 3):
        artifact = make_softnet_onnx(tmp_path / f"s{min_windows}.onnx", SPEC,
                                     PeakParams(threshold=0.35, smooth=1, merge=0, min_windows=min_windows))
        stage = LearnedSpotter(SpotParams(method="learned", artifact=str(artifact)))
        stage.open()
        out = [m for f in faces for m in stage.process(f)] + stage.flush()
        stage.close()
        counts.append(sum(m.topic == "interval" for m in out))
    assert counts[0] >= 1 and counts[1] == 0
