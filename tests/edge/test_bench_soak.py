"""The soak benchmark's memory figures: an honest growth measure, and a record that does not grow."""

import math
import tracemalloc

from edge.tools.soak import SoakRecord, memory_growth


def test_growth_compares_the_medians_of_the_first_and_last_tenths_so_one_sample_cannot_decide_it():
    steady = [100.0] * 100
    steady[0], steady[-1] = 90.0, 130.0  # one low sample at the start, one spike at the end
    g = memory_growth(steady)
    assert g["rss_growth_pct"] == 0.0
    assert g["rss_mb_max"] == 130.0 and g["rss_max_over_start_pct"] == 30.0  # the spike is reported, as the max


def test_growth_shows_a_steady_climb_and_ignores_missing_samples():
    climbing = [100.0 + i * 0.1 for i in range(100)] + [None, float("nan"), 0.0]
    g = memory_growth(climbing)
    # first tenth 100.0..100.9 (median 100.45), last tenth 109.0..109.9 (median 109.45)
    assert math.isclose(g["rss_growth_pct"], 8.96, abs_tol=0.01)
    assert memory_growth([None])["rss_growth_pct"] is None


def test_the_soak_record_takes_no_more_memory_as_ticks_come_and_halves_itself_when_full():
    names = ["capture", "spot"]
    metrics = {n: {"rss_mb": 80.0, "fps": 200.0, "n_in": 1, "drops": {"behind": 2}, "lost": 0, "restarts": 0,
                   "busy_ms": {"p95": 3.0}, "state": "running"} for n in names}
    record = SoakRecord(names, ticks=1000)
    tracemalloc.start()
    try:
        record.add(0.0, 1.0, 110.0, metrics)
        before = tracemalloc.get_traced_memory()[0]
        for t in range(1, 1000):
            record.add(float(t), 1.0, 110.0, metrics)
        assert tracemalloc.get_traced_memory()[0] - before < 4096
    finally:
        tracemalloc.stop()
    assert record.rows == 1000
    record.add(1000.0, 1.0, 110.0, metrics)  # full: every other row goes, every other tick from now on
    assert record.rows == 501 and record.column("t_s")[1] == 2.0
    series = record.series()
    assert series[-1]["t_s"] == 1000.0 and series[0]["spot"] == {
        "state": "running", "rss_mb": 80.0, "fps": 200.0, "n_in": 1.0, "drops": 2.0, "lost": 0.0, "restarts": 0.0, "busy_p95_ms": 3.0}
    assert series[0]["supervisor"]["rss_mb"] == 110.0


def test_the_soak_reports_the_last_ticks_counts_and_zero_before_any_tick_or_when_a_count_is_unknown():
    record = SoakRecord(["spot"], ticks=16)
    assert record.last_count("spot.drops") == 0
    record.add(0.0, 1.0, 110.0, {"spot": {"drops": {"behind": 2}, "restarts": 1}})
    record.add(1.0, 1.0, 110.0, {"spot": {"drops": {"behind": 3, "full": 4}, "restarts": 1}})
    assert (record.last_count("spot.drops"), record.last_count("spot.restarts"), record.last_count("spot.lost")) == (7, 1, 0)
