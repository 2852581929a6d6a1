"""mestream bench measures each per-frame stage alone the way the pipeline runs it: OpenCV on one thread."""

import cv2

from edge.commands import bench
from edge.process import RunOptions
from edge.topology import load_topology
from stand_ins import tiny_video


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
