"""Stages: one registry builds every stage by name, and optional abilities are explicit protocols."""

import importlib
import subprocess
import sys

import pytest

from edge.messages import Message, status
from edge.process import RunOptions
from edge.stages.base import DecodesIntoSlots, Flushes, StatusSink, drain, feed
from edge.stages.registry import SOURCE_STAGES, STAGES, build_stage
from edge.topology import load_topology
from engines.errors import MestreamError


def test_every_stage_the_default_topology_names_is_in_the_registry_and_its_module_exports_the_factory():
    assert set(load_topology().stage_names()) == set(STAGES)
    for name, module in STAGES.items():
        assert callable(importlib.import_module(module).build), name
    assert SOURCE_STAGES <= set(STAGES)


def test_loading_a_topology_imports_no_stage_module():
    code = ("import sys, edge.topology; edge.topology.load_topology(); "
            "print(sorted(m for m in sys.modules if m.startswith('edge.stages.') and m not in ('edge.stages.registry',)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_stages_are_built_by_name_with_their_options_checked(tmp_path):
    run = RunOptions(source=str(tmp_path / "clip.mp4"), fast=True)
    capture = build_stage("capture", {"max_width": 320}, run, resume_seq=7)
    assert capture.name == "capture" and capture.options.max_width == 320 and capture._seq == 7
    assert build_stage("spot", {}, run).name == "spot"
    assert build_stage("publish", {}, run).name == "publish"
    with pytest.raises(MestreamError, match=r"\[stages.capture\]: unknown key 'max_widht'"):
        build_stage("capture", {"max_widht": 320}, run)
    with pytest.raises(MestreamError, match=r"\[stages.publish\]: unknown key 'hwm'"):
        build_stage("publish", {"hwm": 5}, run)  # the publisher's settings are the [publish] table's


def test_an_unknown_stage_name_is_refused_with_the_names_there_are():
    with pytest.raises(MestreamError, match=r"unknown stage 'tarck'; expected one of \['capture', 'classify', 'publish', 'spot', 'track'\]"):
        build_stage("tarck", {}, RunOptions(source="x.mp4"))


class _Counter:
    name = "counter"

    def __init__(self):
        self.seen = []

    def process(self, msg):
        self.seen.append(msg.topic)
        return [msg]


class _Window(_Counter):
    def flush(self):
        return [Message("interval", {"flushed": True})]


class _Sink(_Counter):
    consumes_status = True


def test_status_goes_around_every_stage_but_a_status_sink_and_only_a_window_is_flushed():
    counter, window, sink = _Counter(), _Window(), _Sink()
    out = feed([counter, window, sink], [Message("face", {"seq": 0}), status("track", "face_lost")])
    assert counter.seen == window.seen == ["face"] and sink.seen == ["face", "status"] and len(out) == 2
    assert [m.header for m in drain([counter, window, sink])] == [{"flushed": True}]
    assert (isinstance(window, Flushes), isinstance(counter, Flushes)) == (True, False)
    assert (isinstance(sink, StatusSink), isinstance(window, StatusSink)) == (True, False)


def test_the_capture_stage_can_decode_into_a_slot_the_host_lends_it(tmp_path):
    capture = build_stage("capture", {}, RunOptions(source=str(tmp_path / "clip.mp4")))
    assert isinstance(capture, DecodesIntoSlots) and not isinstance(_Counter(), DecodesIntoSlots)
