"""Several sources: named on the command line or in the topology file, each refused mistake one line."""

from __future__ import annotations

import argparse

import pytest

from edge.commands import run as run_command
from edge.sources import Source, parse_source_args
from edge.topology import parse_topology
from engines.errors import MestreamError

PROCESSES = [{"name": "capture", "stages": ["capture"]}, {"name": "track", "stages": ["track"]}]


def options(*argv: str):
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    return run_command.build_run_options(parser.parse_args(list(argv)))[1]


def test_sources_are_named_by_their_position_unless_named():
    assert parse_source_args(["front=cam:0", "rtsp://cam2/live?user=x", "clip.mp4"]) == (
        Source("front", "cam:0"), Source("s1", "rtsp://cam2/live?user=x"), Source("s2", "clip.mp4"))


def test_a_gstreamer_pipeline_with_equals_signs_is_a_uri_not_a_name():
    pipeline = "v4l2src device=/dev/video0 ! videoconvert ! appsink"
    assert parse_source_args([pipeline]) == (Source("s0", pipeline),)


def test_one_source_on_the_command_line_runs_as_before():
    run = options("--source", "clip.mp4")
    assert (run.source, run.source_name, run.sources) == ("clip.mp4", "s0", ())
    assert run.all_sources() == (("s0", "clip.mp4"),)


def test_several_sources_on_the_command_line_are_all_in_the_run():
    run = options("--source", "front=cam:0", "--source", "side=rtsp://cam2/live")
    assert run.all_sources() == (("front", "cam:0"), ("side", "rtsp://cam2/live"))


@pytest.mark.parametrize("argv, words", [
    (["--source", "a=cam:0", "--source", "a=cam:1"], ["'a' is given twice", "cam:0 and cam:1", "own name"]),
    (["--source", "cam:0", "--source", "side=cam:00"], ["side=cam:00 is the same source as s0=cam:0", "remove one"]),
    (["--source", "x.mp4", "--source", "b=./x.mp4"], ["b=./x.mp4 is the same source as s0=x.mp4"]),
    (["--source", "s1=cam:1", "--source", "cam:2"], ["'s1' is given twice"]),
    (["--source", "front.left=cam:0"], ["'front.left'", "NATS subject token", "rename it"]),
    (["--source", "f*=cam:0"], ["'f*'", "rename it"]),
    (["--source", "front="], ["no source after 'front='", "front=cam:0"]),
])
def test_command_line_source_mistakes_are_one_line_naming_the_value_and_the_fix(argv, words):
    with pytest.raises(MestreamError) as err:
        options(*argv)
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text


def test_the_topology_file_lists_sources_and_the_command_line_replaces_them(tmp_path):
    topo = parse_topology({"process": PROCESSES, "sources": [{"name": "front", "uri": "cam:0"}, {"uri": "cam:1"}]})
    assert topo.sources == (Source("front", "cam:0"), Source("s1", "cam:1"))
    path = tmp_path / "t.toml"
    path.write_text('[[process]]\nname = "capture"\nstages = ["capture"]\n[[sources]]\nname = "front"\nuri = "cam:0"\n')
    assert options("--topology", str(path)).all_sources() == (("front", "cam:0"),)
    assert options("--topology", str(path), "--source", "clip.mp4").all_sources() == (("s0", "clip.mp4"),)


def test_a_run_without_any_source_says_how_to_give_one():
    with pytest.raises(MestreamError, match="no source: pass --source"):
        options()


@pytest.mark.parametrize("sources, words", [
    ([{"name": "a", "uri": "cam:0"}, {"name": "a", "uri": "cam:1"}], ["[[sources]]", "'a' is given twice"]),
    ([{"name": "a", "uri": "cam:0"}, {"name": "b", "uri": "cam:0"}], ["b=cam:0 is the same source as a=cam:0"]),
    ([{"name": "a b", "uri": "cam:0"}], ["'a b'", "rename it"]),
    ([{"name": "a"}], ["#1: no uri", 'uri = "cam:0"']),
    ([{"uri": "cam:0", "url": "x"}], ["unknown key 'url'"]),
    ([{"uri": 3}], ["uri = 3: expected a string"]),
])
def test_topology_source_mistakes_are_one_line(sources, words):
    with pytest.raises(MestreamError) as err:
        parse_topology({"process": PROCESSES, "sources": sources}, "t.toml")
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text


def test_mestream_run_refuses_a_duplicate_source_name_in_one_line_before_anything_starts(capsys):
    from edge.cli import main

    assert main(["run", "--source", "front=cam:0", "--source", "front=cam:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "source name 'front' is given twice" in err and "Traceback" not in err
