"""Logs for people: one INFO line per published event and status change, metrics only at DEBUG; -q/-v/-vv levels."""

import logging

import pytest
from stand_ins import free_port

from edge.messages import Message
from edge.stages.publish import Publish


@pytest.fixture()
def restore_logging():
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in ("edge", "trainer", "engines")})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def _event() -> dict:
    return {"schema": "mestream.event", "version": 1, "kind": "micro", "label": "surprise",
            "probabilities": {"surprise": 0.75, "other": 0.25}, "onset": {"frame": 10, "t_capture_ns": 1},
            "apex": {"frame": 14, "t_capture_ns": 2}, "offset": {"frame": 20, "t_capture_ns": 3}, "fps": 30.0,
            "face_box": [1, 2, 3, 4], "model": {"id": "m", "family": "f"}, "latency_ms": {"flow": 1.0, "classify": 1.0}}


def test_publish_logs_one_info_line_per_event_and_status_change_and_metrics_only_at_debug(caplog):
    stage = Publish(f"tcp://127.0.0.1:{free_port()}")
    stage.open()
    try:
        with caplog.at_level(logging.DEBUG, logger="edge.stages.publish"):
            stage.process(Message("event", _event()))
            stage.process(Message("status", {"stage": "track", "event": "face_lost", "detail": "no face in the frame"}))
            stage.process(Message("status", {"stage": "supervisor", "event": "metrics", "detail": "capture 30 fps"}))
            stage.process(Message("face", {"seq": 1}))  # internal: never logged
    finally:
        stage.close()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(info) == 2
    assert info[0].startswith("event: micro surprise (0.75), frames 10..20, published ")
    assert info[1] == "track face_lost: no face in the frame"
    assert debug == ["metrics: capture 30 fps"]


@pytest.mark.parametrize("argv, root, ours", [
    (["-q"], logging.WARNING, logging.WARNING),
    ([], logging.INFO, logging.INFO),
    (["-v"], logging.INFO, logging.DEBUG),
    (["-vv"], logging.DEBUG, logging.DEBUG),
])
def test_q_v_and_vv_set_the_levels_of_mestream_and_of_the_libraries(argv, root, ours, restore_logging):
    from edge.cli import _configure_logging, build_parser

    logging.getLogger().handlers.clear()  # basicConfig only configures a bare root logger
    for name in ("edge", "trainer", "engines"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    args = build_parser().parse_args([*argv, "doctor"])
    _configure_logging(args.verbose, args.quiet)
    assert logging.getLogger().getEffectiveLevel() == root
    assert logging.getLogger("mediapipe").getEffectiveLevel() == root
    for name in ("edge.stages.publish", "trainer.train", "engines.ort"):
        assert logging.getLogger(name).getEffectiveLevel() == ours


@pytest.mark.parametrize("argv, verbose, quiet", [
    (["run", "-q", "--source", "cam:0"], 0, True),
    (["-q", "run", "--source", "cam:0"], 0, True),
    (["spot-eval", "-vv", "--source", "v.avi", "--truth", "t.csv"], 2, False),
    (["run", "--source", "cam:0"], 0, False),
])
def test_the_log_switches_work_after_the_jobs_name_too(argv, verbose, quiet):
    from edge.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet) == (verbose, quiet)
