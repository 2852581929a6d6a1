"""mestream listen --face: only one face's events and statuses."""

import json
import subprocess
import sys
import time

from stand_ins import free_port

from edge.commands.listen import selected
from edge.messages import status
from edge.stages.publish import Publish


def test_a_message_belongs_to_the_face_it_names():
    assert selected(b'{"event": "face_found", "face_id": 1}', 1)
    assert not selected(b'{"event": "face_found", "face_id": 0}', 1)
    assert not selected(b'{"event": "metrics"}', 1)  # the supervisor's metrics name no face
    assert selected(b'{"event": "metrics"}', None)  # without --face everything passes
    assert not selected(b"not json", 0)


def test_a_message_belongs_to_the_source_it_names_and_both_filters_must_hold():
    assert selected(b'{"event": "face_found", "source": "front"}', source="front")
    assert not selected(b'{"event": "face_found", "source": "side"}', source="front")
    assert not selected(b'{"kind": "micro", "source": "front", "face_id": 0}', face=1, source="front")
    assert selected(b'{"kind": "micro", "source": "front", "face_id": 1}', face=1, source="front")


def test_a_source_name_that_no_source_can_have_is_refused_in_one_line():
    result = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--source", "a.b", "--timeout", "0.3"],
                            capture_output=True, text=True, timeout=30, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "a.b" in lines[0]


def test_listen_with_face_prints_that_face_only():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = Publish(endpoint)
    pub.open()
    listener = subprocess.Popen([sys.executable, "-m", "edge.cli", "listen", "--endpoint", endpoint, "--face", "1",
                                 "--count", "3", "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while listener.poll() is None and time.monotonic() < deadline:
            for face_id in (0, 1):
                pub.process(status("track", "face_found", f"face {face_id} is tracked", face_id=face_id))
            time.sleep(0.05)
        out, err = listener.communicate(timeout=5)
    finally:
        if listener.poll() is None:
            listener.kill()
        pub.close()
    assert listener.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(json.loads(line.split(" ", 1)[1])["face_id"] == 1 for line in lines)


def test_a_negative_face_is_refused_in_one_line():
    result = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--face", "-1", "--timeout", "0.3"],
                            capture_output=True, text=True, timeout=30, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--face -1: expected a face_id >= 0" in lines[0]
