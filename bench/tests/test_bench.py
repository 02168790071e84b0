"""The bench's own helpers: percentiles, summaries, the closed loops, the result file and table.
Nothing here starts CMS or touches a server."""

import asyncio
import json
import random
import statistics
import threading
import time

import pytest

from bench import results
from bench.load import OK, Measurement, Outcome, run_async, run_threads
from bench.stats import percentile, summarise


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_percentile_agrees_with_the_inclusive_method_of_the_standard_library():
    rng = random.Random(3)
    values = sorted(rng.expovariate(1 / 20) for _ in range(1001))
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for q in (1, 25, 50, 90, 95, 99):
        assert percentile(values, q) == pytest.approx(cuts[q - 1])


def test_percentile_refuses_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


def test_summary_in_milliseconds_with_throughput_of_successes_only():
    latencies = [0.001 * n for n in range(1, 101)]  # 1..100 ms
    figures = summarise(latencies, duration=2.0, errors=3, error_kinds={"http 503": 3})
    assert figures["ok"] == 100
    assert figures["errors"] == 3
    assert figures["error_kinds"] == {"http 503": 3}
    assert figures["throughput_per_s"] == 50.0
    assert figures["p50_ms"] == pytest.approx(50.5)
    assert figures["p95_ms"] == pytest.approx(95.05)
    assert figures["p99_ms"] == pytest.approx(99.01)
    assert figures["min_ms"] == 1.0
    assert figures["max_ms"] == 100.0
    assert figures["mean_ms"] == pytest.approx(50.5)


def test_summary_of_nothing_has_no_latencies():
    figures = summarise([], duration=1.0, errors=2)
    assert figures["ok"] == 0
    assert figures["throughput_per_s"] == 0
    assert figures["p95_ms"] is None
    with pytest.raises(ValueError):
        summarise([0.1], duration=0)


def test_measurement_keeps_failures_out_of_latencies_and_breaks_down_by_tag():
    measurement = Measurement(concurrency=2, duration=1.0)
    measurement.record(0.010, Outcome(tag="cjk"))
    measurement.record(0.020, Outcome(tag="email"))
    measurement.record(5.0, Outcome(error="http 503", tag="cjk"))
    measurement.record(0.030, OK)
    figures = measurement.summary()
    assert figures["ok"] == 3
    assert figures["errors"] == 1
    assert figures["max_ms"] == 30.0
    assert figures["by_tag"]["cjk"]["ok"] == 1
    assert figures["by_tag"]["cjk"]["errors"] == 1
    assert figures["by_tag"]["email"]["p50_ms"] == 20.0


def test_async_closed_loop_keeps_exactly_c_requests_in_flight():
    in_flight = 0
    most = 0

    async def request(worker, iteration):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        if iteration % 10 == 9:
            raise ConnectionResetError("counted, not fatal")
        return OK

    measurement = asyncio.run(run_async(request, concurrency=4, duration=0.2, warmup=0.05))
    assert most == 4
    assert len(measurement.latencies) > 20
    assert measurement.errors["ConnectionResetError"] > 0
    assert all(latency >= 0.002 for latency in measurement.latencies)


def test_threaded_closed_loop_uses_one_worker_per_thread_and_closes_them():
    made, closed = [], []

    def make_worker(number):
        made.append(threading.get_ident())

        def call(iteration):
            time.sleep(0.001)
            return OK

        return call, lambda: closed.append(number)

    measurement = run_threads(make_worker, concurrency=3, duration=0.1, warmup=0.02)
    assert sorted(closed) == [0, 1, 2]
    assert measurement.summary()["ok"] > 10


def _result():
    return {
        "started_at": "2026-11-27T04:48:22.942597+00:00",
        "git": {"commit": "4ced6d0292f4abcdef", "dirty": False},
        "config": {"customers": 20000, "concurrency": 8, "duration_s": 4.0, "quick": True},
        "seeding": {"customers": 20000, "seconds": 12.0, "per_s": 1668.0},
        "phases": [
            {
                "name": "search_customers",
                "what": "GET /api/v1/customers",
                **summarise([0.01, 0.02, 0.03], 1.0),
                "by_tag": {"cjk": summarise([0.01], 1.0)},
            }
        ],
        "rss": {"gateway": {"peak_mb": 82.0, "sampled_peak_mb": 80.5, "last_mb": 81.9}},
        "targets": [{"target": "gateway: RSS ≤ 200 MB", "measured": "peak 82.0 MB", "met": True}],
        "not_measured": ["place order"],
    }


def test_result_file_is_named_by_the_utc_start_and_holds_every_figure(tmp_path):
    path = results.write_result(_result(), tmp_path)
    assert path.name == "20261127T044822Z.json"
    document = json.loads(path.read_text())
    assert document["schema_version"] == results.SCHEMA_VERSION
    assert document["phases"][0]["p99_ms"] == pytest.approx(29.8)
    assert document["git"]["commit"].startswith("4ced6d0")
    assert [p.name for p in tmp_path.iterdir()] == ["20261127T044822Z.json"]  # no partial file
    second = results.write_result(_result(), tmp_path)
    assert second.name == "20261127T044822Z-2.json"


def test_markdown_table_lists_phases_breakdowns_memory_targets_and_what_is_missing():
    table = results.markdown(_result())
    assert "| search_customers | GET /api/v1/customers | 3.0 | 20.00 | 29.00 | 29.80 | 3 | 0 |" in (
        table
    )
    assert "| ↳ cjk |" in table
    assert "| gateway | 82.0 | 80.5 | 81.9 |" in table
    assert "| gateway: RSS ≤ 200 MB | peak 82.0 MB | yes |" in table
    assert "Not measured: place order" in table and "place order" in table


def test_git_state_names_a_commit():
    state = results.git_state()
    assert set(state) == {"commit", "branch", "dirty"}


def test_high_water_mark_of_this_process_is_at_least_its_rss():
    import os

    import psutil

    from bench.system import high_water_mark

    mark = high_water_mark(os.getpid())
    if mark is None:
        pytest.skip("no /proc here")
    assert mark >= psutil.Process().memory_info().rss * 0.9


def test_compare_puts_two_runs_side_by_side():
    from bench.compare import compare

    def result(processes, place, p99):
        return {
            "config": {"processes_per_service": processes},
            "phases": [
                {"name": "place_order", "throughput_per_s": place, "p99_ms": p99},
                {"name": "rpc_ping", "skipped": "not asked for"},
            ],
        }

    table = compare(result(1, 40.0, 90.0), result(2, 50.0, 80.0))
    assert "| place_order | 40.0 | 50.0 | 1.25 | 90.0 | 80.0 |" in table
    assert "rpc_ping" not in table
    assert "2" in table.splitlines()[0]


def test_search_target_is_judged_at_half_the_peak_and_names_both_figures():
    from bench.run import targets

    peak = {"name": "search_customers", "p95_ms": 138.0, "throughput_per_s": 90.5}
    peak["concurrency"] = 8
    half = {"name": "search_customers_half", "p95_ms": 41.0, "offered_per_s": 45.2, "errors": 0}
    (search,) = [t for t in targets([peak, half], {}, 1_000_000) if "search" in t["target"]]
    assert search["met"] is True
    assert "41.0 ms" in search["measured"] and "138.0 ms at the peak" in search["measured"]
    assert "half" in search["note"]
    half["errors"] = 3
    (failed,) = [t for t in targets([peak, half], {}, 1_000_000) if "search" in t["target"]]
    assert failed["met"] is False
    (alone,) = [t for t in targets([peak], {}, 20_000) if "search" in t["target"]]
    assert alone["met"] is None and alone["note"] == "only 20,000 customers seeded"


def test_settle_waits_for_a_quiet_machine_and_gives_up_at_its_timeout(monkeypatch):
    from bench import system

    readings = iter([95.0, 60.0, 10.0, 10.0])
    monkeypatch.setattr(system.psutil, "cpu_count", lambda: 2)
    monkeypatch.setattr(system.psutil, "cpu_percent", lambda interval=None: next(readings))
    # the priming read (95) is ignored; 60 % of 2 cores is busy; 10 % of 2 cores is quiet
    assert system.settle(timeout=5, window=0.01) < 1
    assert next(readings) == 10.0
    busy = iter([100.0] * 1000)
    monkeypatch.setattr(system.psutil, "cpu_percent", lambda interval=None: next(busy))
    assert system.settle(timeout=0.05, window=0.01) >= 0.05
