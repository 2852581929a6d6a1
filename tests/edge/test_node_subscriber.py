"""Another language can read the stream: Node's `zeromq` package subscribes to a real run's events.

Needs node and the npm module zeromq@6.8.0, found through MESTREAM_NODE_MODULES (a node_modules folder)
or in .venv/node/node_modules (where .ci/run installs it: npm install --prefix .venv/node zeromq@6.8.0).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from stand_ins import artifact_for_tests, event_schema, free_port

SUBSCRIBER_JS = r"""
const zmq = require("zeromq");
(async () => {
  const sock = new zmq.Subscriber();
  sock.receiveTimeout = Number(process.argv[3]);
  sock.connect(process.argv[2]);
  sock.subscribe("me.");
  try {
    for await (const [topic, body] of sock) {
      process.stdout.write(JSON.stringify({topic: topic.toString(), body: JSON.parse(body.toString())}) + "\n");
    }
  } catch (err) {
    if (err.code !== "EAGAIN") throw err;  // the receive timeout: the run is over
  }
  sock.close();
})();
"""


def _node_modules() -> Path | None:
    candidates = [os.environ.get("MESTREAM_NODE_MODULES", ""), str(Path(__file__).resolve().parents[2] / ".venv" / "node" / "node_modules")]
    for c in candidates:
        if c and (Path(c) / "zeromq" / "package.json").is_file():
            return Path(c)
    return None


@pytest.mark.slow
def test_a_node_zeromq_subscriber_reads_the_published_events(assets, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot check a non-Python subscriber")
    modules = _node_modules()
    if modules is None:
        pytest.skip("npm module zeromq not found: npm install --prefix .venv/node zeromq@6.8.0 (or set MESTREAM_NODE_MODULES)")
    port = free_port()
    script = tmp_path / "sub.js"
    script.write_text(SUBSCRIBER_JS)
    sub = subprocess.Popen([node, str(script), f"tcp://127.0.0.1:{port}", "4000"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=dict(os.environ, NODE_PATH=str(modules)))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(assets / "videos" / "pyfeat_single_face.mp4"),
             "--fast", "--artifact", str(artifact_for_tests(tmp_path)), "--publish", f"tcp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out, err = sub.communicate(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert sub.returncode == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    events = [g["body"] for g in got if g["topic"] == "me.event"]
    assert events and any(g["topic"] == "me.status" for g in got)
    for event in events:
        jsonschema.validate(event, event_schema())
