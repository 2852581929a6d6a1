"""Speculative classification: the spotter sends a "candidate" (onset and apex) before the offset, infer
scores it at once and publishes the interval's event from it; the event is the one the interval alone gives."""

import numpy as np
import pytest
from stand_ins import FakeEngine, ListSource, fake_flow, interval
from test_regional_spotter import make_faces, spot

from edge.contents import content_problem
from edge.messages import TOPICS, Message
from edge.spotting.params import SpotParams
from edge.spotting.regional import RegionalSpotter
from edge.stages.base import run_chain
from edge.stages.classify import Classify, ClassifyOptions, Scores, SpeculativeResults
from engines.errors import MestreamError

FPS = 200.0
# 0.35 s at 200 fps: rise over 40 frames, fall over 30, 2.5 px at the mouth corner
EVENT = (200, 240, 240, 270, 2.5)


@pytest.fixture(scope="module")
def spotted():
    return spot(make_faces(400, fps=FPS, events=[EVENT]))


def _candidate_of(msg: Message) -> Message:
    header = {k: v for k, v in msg.header.items() if k not in ("kind", "offset")}
    return Message("candidate", header, dict(msg.arrays))


def _without_timings(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "latency_ms"}


def test_the_spotter_sends_a_candidate_with_the_onset_and_apex_crops_of_the_interval_before_it(spotted):
    topics = [m.topic for m in spotted if m.topic in ("candidate", "interval")]
    assert topics == ["candidate", "interval"]
    cand, inter = [m for m in spotted if m.topic in ("candidate", "interval")]
    assert cand.header["onset"] == inter.header["onset"] and cand.header["apex"] == inter.header["apex"]
    assert cand.header["score"] == inter.header["score"] and "offset" not in cand.header
    assert cand.arrays.keys() == inter.arrays.keys()
    assert all(np.array_equal(cand.arrays[k], inter.arrays[k]) for k in cand.arrays)
    assert content_problem(cand) == "" and "candidate" in TOPICS


def test_speculation_publishes_exactly_the_event_the_interval_alone_gives_with_the_real_flow_and_artifact(spotted):
    from engines import default_artifact_path

    ahead = Classify(default_artifact_path())
    plain = Classify(default_artifact_path(), options=ClassifyOptions(speculate=False))
    [fast] = [m for m in run_chain(ListSource(spotted), [ahead]) if m.topic == "event"]
    [slow] = [m for m in run_chain(ListSource(spotted), [plain]) if m.topic == "event"]
    assert ahead.speculated.hits == 1 and ahead.speculated.misses == 0 and len(ahead.speculated) == 0
    assert _without_timings(fast.header) == _without_timings(slow.header)
    assert set(fast.header["latency_ms"]) == set(slow.header["latency_ms"])


def _fake_stage(**options):
    engine = FakeEngine()
    return Classify("fake.onnx", options=ClassifyOptions(**options), engine_factory=lambda path: engine, flow_fn=fake_flow), engine


def test_an_interval_whose_apex_moved_after_its_candidate_is_scored_again_and_the_stale_candidate_dropped():
    inter = interval(10)
    early = _candidate_of(interval(10))
    early.header["apex"] = {"seq": 11, "t_capture_ns": 5}  # a higher peak came after this candidate
    early.arrays["apex"] = early.arrays["onset"].copy()
    stage, engine = _fake_stage()
    [event] = run_chain(ListSource([early, inter]), [stage])
    reference, _ = _fake_stage(speculate=False)
    [expected] = run_chain(ListSource([inter]), [reference])
    assert len(engine.calls) == 2 and stage.speculated.misses == 1 and stage.speculated.wasted == 1
    assert len(stage.speculated) == 0
    assert _without_timings(event.header) == _without_timings(expected.header)


def test_a_candidate_under_the_same_key_with_other_crops_is_not_used():
    inter = interval(10)
    other = _candidate_of(interval(10, brighter=-40))  # same onset/apex seq and times, another apex crop
    stage, engine = _fake_stage()
    [event] = run_chain(ListSource([other, inter]), [stage])
    assert len(engine.calls) == 2 and stage.speculated.hits == 0
    assert event.header["label"] == "positive"  # the interval's own (brighter) apex, not the candidate's


def test_a_matching_candidate_saves_the_intervals_flow_and_engine_call():
    stage, engine = _fake_stage()
    [event] = run_chain(ListSource([_candidate_of(interval(10)), interval(10)]), [stage])
    assert len(engine.calls) == 1 and stage.speculated.hits == 1 and event.topic == "event"


def test_without_speculation_candidates_are_dropped_unscored():
    stage, engine = _fake_stage(speculate=False)
    assert run_chain(ListSource([_candidate_of(interval(10))]), [stage]) == []
    assert engine.calls == [] and len(stage.speculated) == 0


def test_a_candidate_under_min_score_is_not_scored():
    stage, engine = _fake_stage(min_score=3.0)  # interval() scores 2.5
    assert run_chain(ListSource([_candidate_of(interval(10)), interval(10)]), [stage]) == []
    assert engine.calls == []


def test_the_cache_keeps_at_most_its_capacity_dropping_the_oldest():
    cache = SpeculativeResults(capacity=3)
    scores = Scores(np.array([1.0, 0.0, 0.0]), 1.0, 0.0, 0.0)
    for seq in range(0, 100, 10):
        cache.put(_candidate_of(interval(seq)), scores)
    assert len(cache) == 3 and cache.wasted == 7
    assert cache.take(interval(90)) is scores and cache.take(interval(0)) is None


def test_a_candidate_is_checked_at_the_entrance_like_an_interval():
    good = _candidate_of(interval(10))
    assert content_problem(good) == ""
    no_apex = _candidate_of(interval(10))
    no_apex.arrays.pop("apex")
    assert "apex" in content_problem(no_apex)
    bad_point = _candidate_of(interval(10))
    bad_point.header["onset"] = "x"
    assert "onset" in content_problem(bad_point)
    bad_score = _candidate_of(interval(10))
    bad_score.header["score"] = "high"
    assert "score" in content_problem(bad_score)


def test_a_cache_of_no_entries_is_a_clear_error():
    with pytest.raises(MestreamError, match="speculate_cache"):
        ClassifyOptions(speculate_cache=0)


def test_a_higher_candidate_fraction_sends_the_same_candidate_earlier_after_the_apex():
    faces = make_faces(400, fps=FPS, events=[EVENT])

    def candidate_sent_at(frac):
        stage = RegionalSpotter(SpotParams(candidate_frac=frac))
        stage.open()
        sent = [(face.header["seq"], m) for face in faces for m in stage.process(face) if m.topic == "candidate"]
        stage.close()
        assert len(sent) == 1
        return sent[0][0], sent[0][1].header["apex"]["seq"]

    early, late = candidate_sent_at(0.95), candidate_sent_at(0.5)
    assert early[1] == late[1]  # the same apex
    assert early[1] < early[0] < late[0]


def test_each_faces_candidates_wait_for_that_faces_interval():
    cache = SpeculativeResults(capacity=8)
    scores = [Scores(np.array([1.0, 0.0, 0.0]), 1.0, 0.0, 0.0), Scores(np.array([0.0, 1.0, 0.0]), 1.0, 0.0, 0.0)]
    for face_id in (0, 1):  # two faces, an expression at the same frames
        candidate = _candidate_of(interval(10))
        candidate.header["face_id"] = face_id
        cache.put(candidate, scores[face_id])
    late = interval(10)
    late.header["face_id"] = 1
    assert cache.take(late) is scores[1]
    assert len(cache) == 1  # face 0's candidate is not stale for face 1's interval
    early = interval(10)
    early.header["face_id"] = 0
    assert cache.take(early) is scores[0]
