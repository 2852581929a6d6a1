"""Every example topology loads with the runtime's own loader and names a source line that fits it."""

import re
from pathlib import Path

import pytest

TOPOLOGIES = sorted((Path(__file__).resolve().parents[2] / "deploy" / "topologies").glob("*.toml"))


def _source_line(path: Path) -> str:
    match = re.search(r"^# source: (.+)$", path.read_text(), flags=re.M)
    assert match, f"{path.name} has no '# source: ...' line telling which MESTREAM_SOURCE goes with it"
    return match.group(1).strip()


def test_the_four_camera_setups_are_all_there():
    names = {p.stem for p in TOPOLOGIES}
    assert {"usb-webcam-30fps", "csi-60fps", "usb3-mono-200fps", "rtsp-ipcam"} <= names


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_each_topology_loads_with_the_runtime_loader_and_its_stage_options_build(path):
    from edge import process, topology

    topo = topology.load_topology(path)
    assert topo.processes[0].stages[0] == "capture"
    assert topo.publish.endpoint.startswith(("tcp://127.0.0.1:", "ipc://")), "examples must not expose results"
    run = process.RunOptions(source=_source_line(path), publish=topo.publish)
    for stage, options in topo.stage_options.items():
        # Exactly what each stage process does at start: unknown keys, wrong types, bad values are refused.
        process.build_stage(stage, options, run)


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_each_source_line_is_a_gstreamer_pipeline_that_bounds_its_appsink(path):
    source = _source_line(path)
    from edge.stages import capture

    assert capture.source_kind(source) == "gstreamer"
    elements = [e.strip() for e in source.split(" ! ")]
    sink = elements[-1].split()
    assert sink[0] == "appsink", "OpenCV reads GStreamer pipelines through a final appsink"
    props = dict(p.split("=", 1) for p in sink[1:])
    assert props.get("drop") == "1", "a live camera must drop old buffers, never queue without bound"
    assert props.get("sync") == "false"
    if props.get("max-buffers") != "1":
        # Keeping more than the newest buffer has to be argued for in the file itself.
        assert "Why NOT max-buffers=1" in path.read_text(), f"{path.name} keeps {props.get('max-buffers')} buffers without saying why"
        assert int(props["max-buffers"]) <= 32


def test_the_200_fps_mono_camera_stays_mono_and_keeps_a_few_buffers():
    path = next(p for p in TOPOLOGIES if p.stem == "usb3-mono-200fps")
    text = path.read_text()
    assert 'color = "mono"' in text
    assert "format=GRAY8" in _source_line(path)
    assert "framerate=210/1" in _source_line(path)


def test_no_topology_carries_a_password():
    for path in TOPOLOGIES:
        if path.stem == "rtsp-ipcam":
            # The example URL is a placeholder and the file says to keep the real one in the 0600 env file.
            assert "mestream.env (mode 0600)" in path.read_text()
