"""mestream bench measures each per-frame stage alone the way the pipeline runs it: OpenCV on one thread."""

import cv2
from stand_ins import tiny_video

from edge.process import RunOptions
from edge.tools import bench
from edge.topology import load_topology


def test_each_per_frame_stage_alone_runs_opencv_on_one_thread_and_the_callers_setting_comes_back(tmp_path, monkeypatch):
    import edge.process as process

    monkeypatch.delenv("OPENCV_FOR_THREADS_NUM", raising=False)
    seen = {}
    real_build = process.build_stage

    def recording_build(name, options, run, resume_seq=0):
        stage = real_build(name, options, run, resume_seq)
        for method in ("read", "process"):
            inner = getattr(stage, method, None)
            if inner is not None:
                def wrapped(*args, _inner=inner, **kwargs):
                    seen.setdefault(name, set()).add(cv2.getNumThreads())
                    return _inner(*args, **kwargs)
                setattr(stage, method, wrapped)
        return stage

    monkeypatch.setattr(process, "build_stage", recording_build)
    cv2.setNumThreads(2)
    try:
        solo = bench.solo_stages(load_topology(), RunOptions(source=str(tiny_video(tmp_path / "v.avi", 40)), fast=True), 0.8)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(-1)
    assert {"capture", "track", "spot"} <= set(solo)
    assert {name: seen[name] for name in ("capture", "track", "spot")} == {"capture": {1}, "track": {1}, "spot": {1}}


def test_the_users_own_opencv_thread_count_is_kept_as_the_supervisor_keeps_it(monkeypatch):
    monkeypatch.setenv("OPENCV_FOR_THREADS_NUM", "2")
    with bench.pipeline_threads():
        inside = cv2.getNumThreads()
    assert inside == 2


def test_the_table_says_when_spot_alone_analysed_only_some_frames():
    solo = {"capture": {"fps": 1400.0, "cpu_ms_per_frame": 0.7}, "track": {"fps": 750.0, "cpu_ms_per_frame": 1.3},
            "spot": {"fps": 3600.0, "cpu_ms_per_frame": 0.28, "analyses_every": 4}}
    processes = {name: {"fps": 600.0, "cpu_pct": 50.0, "cpu_ms_per_frame": 1.0, "peak_rss_mb": 100.0, "drops": 0,
                        "busy_ms": {"p95": 2.0}} for name in ("capture", "track", "spot")}
    result = {"source": "s200.avi", "width": 640, "solo": solo, "one_process": {"fps": 400.0}, "ratio_to_slowest": 0.8,
              "cpu_count": 2, "load_average": [0.5, 0.5, 0.5], "targets_met": {},
              "multi_process": {"fps": 600.0, "processes": processes, "cpu_ms_per_frame": 3.0, "cpu_bound_fps": 666.0,
                                "latency_ms": {"events": 0}, "total_peak_rss_mb": 480.0, "drops": 0}}
    lines = bench.table(result).splitlines()
    assert [line for line in lines if line.startswith("spot ")][0].endswith("(analyses 1 frame in 4: SpotParams.max_rate_hz)")
    solo["spot"]["analyses_every"] = 1
    assert "analyses" not in bench.table(result)
