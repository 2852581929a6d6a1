from dataclasses import replace

import jsonschema
import numpy as np
import pytest
from stand_ins import CLASSES, FakeEngine, ListSource, event_schema, fake_flow, interval

from edge.messages import Message
from edge.stages.base import run_chain
from edge.stages.classify import Classify
from edge.stages.publish import Publish
from engines.errors import MestreamError


def _stage(engine=None):
    engine = engine or FakeEngine()
    return Classify("fake.onnx", engine_factory=lambda path: engine, flow_fn=fake_flow), engine


def test_an_interval_becomes_an_event_with_label_probabilities_and_frames():
    stage, engine = _stage()
    [event] = run_chain(ListSource([interval(10)]), [stage])
    h = event.header
    assert event.topic == "event" and h["schema"] == "mestream.event" and h["version"] == 1
    assert h["label"] == "positive" and set(h["probabilities"]) == set(CLASSES)
    assert abs(sum(h["probabilities"].values()) - 1) < 1e-5
    assert (h["onset"]["frame"], h["apex"]["frame"], h["offset"]["frame"]) == (10, 13, 16)
    assert h["face_box"] == [10, 20, 100, 120] and h["model"] == {"id": "f" * 64, "family": "fake"}
    assert h["latency_ms"]["track"] == 7.0 and h["latency_ms"]["flow"] >= 0
    assert engine.calls[0].shape == (1, 3, 28, 28) and engine.closed


def test_the_input_follows_the_artifacts_layout_channels_last_too():
    stage, engine = _stage(FakeEngine(shape=(1, 28, 28, 3)))
    run_chain(ListSource([interval(0)]), [stage])
    assert engine.calls[0].shape == (1, 28, 28, 3)


def test_a_darker_apex_is_classified_differently():
    stage, _ = _stage()
    [event] = run_chain(ListSource([interval(0, brighter=-40)]), [stage])
    assert event.header["label"] == "surprise"


def test_status_and_other_messages_pass_through_untouched():
    stage, engine = _stage()
    status = Message("status", {"stage": "track", "event": "face_lost"})
    out = run_chain(ListSource([status, interval(0)]), [stage])
    assert out[0] is status and out[1].topic == "event" and len(engine.calls) == 1


def test_an_interval_without_crops_is_a_clear_error():
    stage, _ = _stage()
    broken = interval(0)
    broken.arrays.pop("apex")
    with pytest.raises(MestreamError, match="lacks its onset/apex"):
        run_chain(ListSource([broken]), [stage])


def test_published_events_validate_against_the_json_schema(tmp_path):
    stage, _ = _stage()
    record = tmp_path / "events.jsonl"
    publish = Publish("tcp://127.0.0.1:0", record=record)
    out = run_chain(ListSource([interval(0), interval(40, kind="macro")]), [stage, publish])
    assert [m.topic for m in out] == ["me.event", "me.event"]
    for m in out:
        jsonschema.validate(m.header, event_schema())
        assert m.header["latency_ms"]["offset_to_result"] >= 0
    assert len(record.read_text().splitlines()) == 2


def test_a_macro_expression_that_revises_an_earlier_micro_event_says_which_and_validates():
    stage, _ = _stage()
    release = interval(40, kind="macro")
    release.header["revises"] = {"onset": 40, "offset": 44}
    [m] = run_chain(ListSource([release]), [stage, Publish("tcp://127.0.0.1:0")])
    assert m.header["revises"] == {"onset": 40, "offset": 44}
    jsonschema.validate(m.header, event_schema())
    [plain] = run_chain(ListSource([interval(0)]), [_stage()[0]])
    assert "revises" not in plain.header


def test_the_schema_rejects_an_event_missing_its_label():
    stage, _ = _stage()
    [m] = run_chain(ListSource([interval(0)]), [stage, Publish("tcp://127.0.0.1:0")])
    bad = dict(m.header)
    del bad["label"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, event_schema())
    assert np.isfinite(m.header["latency_ms"]["classify"])


def test_the_event_schema_is_itself_a_valid_versioned_json_schema():
    schema = event_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"] == {"const": "mestream.event"} and schema["properties"]["version"] == {"const": 1}


def test_flow_in_either_channel_layout_fits_an_artifact_of_either_layout():
    import numpy as np

    from edge.stages.classify import _as_input

    chw = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    hwc = np.moveaxis(chw, 0, -1)
    assert np.array_equal(_as_input(chw, (1, 3, 28, 28), "flow")[0], chw)
    assert np.array_equal(_as_input(hwc, (1, 3, 28, 28), "flow")[0], chw)
    assert np.array_equal(_as_input(chw, (1, 28, 28, 3), "flow")[0], hwc)


def _with_apex(shape):
    from engines.artifact import TensorInfo

    engine = FakeEngine()
    engine.meta = replace(engine.meta, inputs=engine.meta.inputs + (TensorInfo("apex", shape, "float32", "apex crop texture"),))
    return engine


@pytest.mark.parametrize("apex_shape, colour", [(None, False), ((1, 1, 28, 28), False), ((1, 3, 28, 28), True), ((1, 28, 28, 3), True)])
def test_only_an_artifact_that_reads_the_apex_in_colour_wants_colour_crops(apex_shape, colour):
    stage, _ = _stage(FakeEngine() if apex_shape is None else _with_apex(apex_shape))
    stage.open()
    try:
        assert stage.wants_colour is colour
    finally:
        stage.close()


def test_the_duration_is_in_the_sources_time_even_when_a_file_is_read_faster_than_it_plays():
    # a 2.25 s smile at 24 fps, captured in 0.28 s by --fast: the spotter called it macro by its frames
    msg = interval(113, kind="macro")
    msg.header.update(fps=24.0, onset={"seq": 113, "t_capture_ns": 1_000_000_000},
                      apex={"seq": 132, "t_capture_ns": 1_100_000_000}, offset={"seq": 167, "t_capture_ns": 1_278_000_000})
    [event] = run_chain(ListSource([msg]), [_stage()[0]])
    assert event.header["kind"] == "macro" and event.header["duration_s"] == 2.25


def test_an_event_names_the_face_its_interval_came_from_and_validates():
    stage, _ = _stage()
    msg = interval(10)
    msg.header.update(face_id=3, box=[400, 30, 180, 180])
    [event] = run_chain(ListSource([msg]), [stage, Publish("tcp://127.0.0.1:0")])
    assert event.header["face_id"] == 3 and event.header["face_box"] == [400, 30, 180, 180]
    jsonschema.validate(event.header, event_schema())
    bad = {**event.header, "face_id": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, event_schema())


def test_an_event_names_the_frame_its_flow_started_from_and_validates():
    stage, _ = _stage()
    msg = interval(10)
    msg.header["flow_onset"] = {"seq": 8, "t_capture_ns": 1_000_000_000 + 8 * 33_333_333}
    [event] = run_chain(ListSource([msg]), [stage, Publish("tcp://127.0.0.1:0")])
    assert event.header["flow_onset"]["frame"] == 8 and event.header["onset"]["frame"] == 10
    jsonschema.validate(event.header, event_schema())
    [plain] = run_chain(ListSource([interval(10)]), [_stage()[0]])
    assert "flow_onset" not in plain.header  # an interval that names none: the onset's own crop
