"""SIGTERM to a real `mestream run` of the full default pipeline (capture | track | spot | infer) on a real
face video: everything stops within 3 s, the JSONL record is complete, and no process, ipc socket file
or shared-memory segment is left behind."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from stand_ins import artifact_for_tests, free_port, stage_processes_of, wait_until


def _shm_maps(pid: int) -> set[str]:
    """Shared-memory files this process has mapped (POSIX shm lives in /dev/shm)."""
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {line.split(None, 5)[5].replace(" (deleted)", "") for line in text.splitlines()
            if len(line.split(None, 5)) == 6 and "/dev/shm/" in line}


def _workdir(pid: int) -> Path:
    """The run's private ipc folder, read off a stage process's plan (its control endpoint)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    plan = json.loads(argv[argv.index(b"edge.process") + 1])
    return Path(plan["control"].removeprefix("ipc://")).parent


def _all_running(partial: Path) -> bool:
    try:
        lines = partial.read_text().splitlines()
    except OSError:
        return False
    for line in reversed(lines):
        try:
            body = json.loads(line)
        except ValueError:
            continue  # a line being written
        if body.get("event") == "metrics":
            procs = body["processes"]
            return len(procs) == 4 and all(p["state"] == "running" for p in procs.values()) and (procs["spot"]["n_in"] or 0) > 10
    return False


def test_sigterm_stops_the_full_pipeline_within_three_seconds_flushes_the_record_and_leaves_nothing(assets, tmp_path):
    from edge.topology import default_topology_path

    topology = tmp_path / "t.toml"
    topology.write_text(default_topology_path().read_text().replace("max_width = 0 ", "max_width = 0\nrepeat = 50 "))
    record = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "-q", "run", "--source", str(assets / "videos" / "pyfeat_single_face.mp4"),
                             "--topology", str(topology), "--artifact", str(artifact_for_tests(tmp_path)), "--record", str(record),
                             "--publish", f"tcp://127.0.0.1:{free_port()}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(stage_processes_of(proc.pid)) == 4, 30)
        children = stage_processes_of(proc.pid)
        workdir = _workdir(children[0])
        # in full flow: a metrics line on the record shows all four processes running, frames reached infer
        assert wait_until(lambda: _all_running(tmp_path / "r.jsonl.partial"), 60)
        assert workdir.is_dir() and any(p.is_socket() for p in workdir.iterdir())
        shm = set().union(*(_shm_maps(pid) for pid in [proc.pid, *children]))
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read()
    assert took < 3.0, took
    assert "Traceback" not in stderr, stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert not stage_processes_of(proc.pid)
    assert not workdir.exists()
    assert not any(Path(p).exists() for p in shm), shm
    assert record.exists() and not (tmp_path / "r.jsonl.partial").exists()
    lines = record.read_text().splitlines()
    assert lines and all(json.loads(line)["schema"].startswith("mestream.") for line in lines)
