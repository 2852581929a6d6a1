"""Action units in every event: the classify stage runs the shipped AU artifact beside the classifier, on the
classifier's own flow when both are made alike, and the schema, the log line and the preview carry them."""

from dataclasses import replace

import jsonschema
import numpy as np
import pytest
from stand_ins import FakeEngine, ListSource, event_schema, fake_flow, interval

from edge.stages.action_units import ActionUnits, au_artifact_path, with_action_units
from edge.stages.base import run_chain
from edge.stages.classify import Classify, ClassifyOptions
from edge.stages.publish import Publish
from engines import default_artifact_path, default_au_artifact_path
from engines.artifact import read_artifact
from engines.errors import MestreamError


def _stage(action_units="default", flow_fn=fake_flow, engine=None):
    engine = engine or FakeEngine()
    return Classify("fake.onnx", options=ClassifyOptions(action_units=action_units),
                    engine_factory=lambda path: engine, flow_fn=flow_fn)


def _published(stage, messages):
    return run_chain(ListSource(messages), [stage, Publish("tcp://127.0.0.1:0")])


def test_the_shipped_au_artifact_describes_action_units_with_thresholds_and_the_classifiers_input():
    au, classifier = read_artifact(default_au_artifact_path()), read_artifact(default_artifact_path())
    assert au.task == "action_units" and classifier.task == "classes"
    assert all(c.startswith("AU") for c in au.classes) and "AU4" in au.classes and "AU12" in au.classes
    assert set(au.thresholds) == set(au.classes) and all(0 < t < 1 for t in au.thresholds.values())
    assert au.inputs[0].shape == classifier.input("flow").shape and au.flow == classifier.flow
    assert au.training["samples"] == 185 and au.scores["macro_f1"] >= 0.6
    card = (default_au_artifact_path().parent / "AU_CARD.md").read_text()
    assert au.model_id in card and "research" in card and "leave-one-subject-out" in card  # the card of this file


def test_every_published_event_carries_au_probabilities_and_the_active_ones_and_validates():
    out = _published(_stage(), [interval(0), interval(40, brighter=-40)])
    for m in out:
        h = m.header
        jsonschema.validate(h, event_schema())
        names = list(read_artifact(default_au_artifact_path()).classes)
        assert list(h["action_units"]) == names and all(0 <= p <= 1 for p in h["action_units"].values())
        thresholds = read_artifact(default_au_artifact_path()).thresholds
        assert h["action_units_active"] == [n for n in names if h["action_units"][n] >= thresholds[n]]
        assert h["latency_ms"]["action_units"] >= 0
    assert out[0].header["action_units"] != out[1].header["action_units"]


def test_off_publishes_events_without_au_fields_that_still_validate():
    [m] = _published(_stage("off"), [interval(0)])
    assert "action_units" not in m.header and "action_units_active" not in m.header
    jsonschema.validate(m.header, event_schema())


@pytest.mark.parametrize("change", [
    lambda h: h["action_units"].update(AU4=1.5),  # not a probability
    lambda h: h["action_units"].update(smile=0.5),  # not a FACS name
    lambda h: h.update(action_units_active="AU4"),  # not a list
    lambda h: h.pop("action_units_active"),  # one without the other
    lambda h: h.update(action_units={}),  # an AU model knows at least one AU
])
def test_the_schema_rejects_malformed_au_fields(change):
    [m] = _published(_stage(), [interval(0)])
    bad = {**m.header, "action_units": dict(m.header["action_units"]), "action_units_active": list(m.header["action_units_active"])}
    change(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, event_schema())


def test_the_au_model_reads_the_classifiers_flow_when_both_are_made_alike():
    calls = []

    def counting_flow(onset, apex, params, size=28):
        calls.append(size)
        return fake_flow(onset, apex, params, size)

    engine = FakeEngine()
    engine.meta = replace(engine.meta, flow=read_artifact(default_au_artifact_path()).flow)  # the same TV-L1 parameters
    stage = _stage(flow_fn=counting_flow, engine=engine)
    run_chain(ListSource([interval(0)]), [stage])
    assert calls == [28]  # one flow for both models
    other = _stage(flow_fn=counting_flow)  # a classifier whose flow is made otherwise: the AU model makes its own
    calls.clear()
    [event] = run_chain(ListSource([interval(0)]), [other])
    assert calls == [28]  # the classifier's; the AU model made its own, the one its artifact asks for
    assert set(event.header["action_units"]) == set(read_artifact(default_au_artifact_path()).classes)


def test_the_real_classifier_and_au_model_share_one_flow_on_real_crops():
    stage = Classify(default_artifact_path())
    stage.open()
    try:
        assert stage._au.shares_flow
        [event] = stage.process(interval(0))
        assert set(event.header["action_units"]) == set(read_artifact(default_au_artifact_path()).classes)
        assert event.header["latency_ms"]["action_units"] < 50  # a linear read-out, not a second flow
    finally:
        stage.close()


def test_pointing_action_units_at_something_else_is_a_one_line_error(tmp_path):
    with pytest.raises(MestreamError, match="not an existing .onnx file"):
        au_artifact_path(str(tmp_path / "missing.onnx"))
    with pytest.raises(MestreamError, match="not an action-unit model"):
        _stage(str(default_artifact_path())).open()
    assert au_artifact_path("off") is None and au_artifact_path("default") == default_au_artifact_path()


def test_the_cli_flag_sets_the_topologys_classify_option_and_refuses_a_bad_value(tmp_path):
    from edge.topology import load_topology

    topo = load_topology()
    assert with_action_units(topo, None) is topo
    assert with_action_units(topo, "off").stage_options["classify"]["action_units"] == "off"
    with pytest.raises(MestreamError, match="action_units = "):
        with_action_units(topo, str(tmp_path / "nope.onnx"))


def test_an_au_engine_that_returns_the_wrong_count_is_refused():
    class Wrong:
        meta = read_artifact(default_au_artifact_path())

        def infer(self, inputs):
            return {"probs": np.zeros((1, 2), np.float32)}

    au = ActionUnits(Wrong(), {}, 28, flow_fn=fake_flow)
    with pytest.raises(MestreamError, match="2 probabilities for"):
        au.score(np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8), None)


def test_the_event_log_line_and_the_preview_row_show_the_active_units(caplog):
    import logging

    from edge.preview.state import _event_row
    from edge.stages.publish import _log_line

    [m] = run_chain(ListSource([interval(0)]), [_stage()])
    event = {**m.header, "action_units": {"AU4": 0.9, "AU12": 0.1}, "action_units_active": ["AU4"]}
    assert _event_row(event)["action_units"] == [{"name": "AU4", "p": 0.9}]
    assert _event_row({**event, "action_units_active": []})["action_units"] == []
    with caplog.at_level(logging.INFO, logger="edge.stages.publish"):
        _log_line("me.event", {**event, "latency_ms": {"offset_to_result": 5.0}})
        _log_line("me.event", {**event, "action_units_active": [], "latency_ms": {"offset_to_result": 5.0}})
    assert "[AU4]" in caplog.records[0].getMessage() and "[no AU]" in caplog.records[1].getMessage()
