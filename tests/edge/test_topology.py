import copy
import tomllib

import pytest

from edge.topology import default_topology_path, load_topology, parse_topology
from engines.errors import MestreamError


def _default():
    return tomllib.loads(default_topology_path().read_text())


def test_the_default_topology_is_capture_track_spot_infer():
    topo = load_topology()
    assert [p.name for p in topo.processes] == ["capture", "track", "spot", "infer"]
    assert topo.stage_names() == ["capture", "track", "spot", "classify", "publish"]
    assert topo.publish.endpoint == "tcp://127.0.0.1:5560" and not topo.publish.allow_public


def test_every_line_of_the_default_topology_is_commented():
    for line in default_topology_path().read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "[")):
            assert "#" in line, f"uncommented line: {line}"


def _error(mutate) -> str:
    data = copy.deepcopy(_default())
    mutate(data)
    with pytest.raises(MestreamError) as info:
        parse_topology(data, "t.toml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_an_unknown_stage_is_refused_naming_it():
    assert "unknown stage 'tarck'" in _error(lambda d: d["process"][1].update(stages=["tarck"]))


def test_an_unknown_key_is_refused_naming_it():
    assert "unknown key 'heartbeat'" in _error(lambda d: d["runtime"].update(heartbeat=1))
    assert "unknown key 'qeue'" in _error(lambda d: d["process"][1].update(qeue=3))
    assert "unknown key 'extra'" in _error(lambda d: d.update(extra={}))


def test_wrong_types_are_refused():
    assert "expected a number" in _error(lambda d: d["runtime"].update(heartbeat_s="fast"))
    assert "expected an integer" in _error(lambda d: d["process"][1].update(queue=2.5))
    assert "expected true or false" in _error(lambda d: d["publish"].update(allow_public="yes"))
    assert "list of strings" in _error(lambda d: d["process"][1].update(stages="track"))


def test_impossible_values_are_refused():
    assert "positive" in _error(lambda d: d["runtime"].update(heartbeat_s=-1))
    assert "queue = 0" in _error(lambda d: d["process"][1].update(queue=0))
    assert "policy = 'lossy'" in _error(lambda d: d["process"][1].update(policy="lossy"))
    assert "fast_nice = 25" in _error(lambda d: d["runtime"].update(fast_nice=25))
    assert "nice = 20" in _error(lambda d: d["process"][1].update(nice=20))
    assert "nice = -5" in _error(lambda d: d["process"][1].update(nice=-5))
    assert "appears twice" in _error(lambda d: d["process"][2].update(name="track"))
    assert "is a source" in _error(lambda d: (d["process"][0].update(stages=["track"]), d["process"][1].update(stages=["capture"])))
    assert "hang_timeout_s" in _error(lambda d: d["runtime"].update(hang_timeout_s=0.6))
    assert "no process runs" in _error(lambda d: d["stages"].update(bogus={"x": 1}))


def test_a_missing_file_and_bad_toml_are_one_line_errors(tmp_path):
    with pytest.raises(MestreamError, match="cannot read"):
        load_topology(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[runtime\n")
    with pytest.raises(MestreamError, match="not valid TOML"):
        load_topology(bad)
