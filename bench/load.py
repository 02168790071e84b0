"""Load generators. Closed loop: a fixed number of concurrent workers, each sending its next
request as soon as the previous one is answered, for a fixed time (the peak a system gives).
Open loop: requests sent at a fixed rate whatever the answers (the latency at a given load).

- ``run_async`` drives asyncio coroutines (the HTTP phases, with aiohttp);
- ``run_async_at_rate`` sends asyncio requests at a fixed rate (the writes at half their peak);
- ``run_threads`` drives blocking calls from OS threads (the raw PostgreSQL and RabbitMQ
  baselines, whose clients are blocking; psycopg2 and the socket calls of kombu release the
  GIL while they wait).

Each phase first runs ``warmup`` seconds whose requests are not counted (connections opened,
caches and pools filled), then ``duration`` measured seconds. A request counts when it started
within the measured window; its latency is the time from sending to the complete answer.
Throughput is the number of successful requests divided by ``duration``. A request fails when
it raises or its outcome says so (an unexpected HTTP status); failures are counted by kind and
kept out of the latency figures.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summarise


@dataclass
class Outcome:
    """What one request came to: ``error`` names the failure (``"http 503"``), ``tag`` the
    kind of request for a breakdown (``"cjk"``, ``"pinyin"``)."""

    error: str | None = None
    tag: str | None = None


OK = Outcome()


@dataclass
class Measurement:
    concurrency: int
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    by_tag: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tag_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: figures a generator adds to the summary (the offered rate of an open loop)
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, seconds: float, outcome: Outcome) -> None:
        if outcome.error:
            self.errors[outcome.error] += 1
            if outcome.tag:
                self.tag_errors[outcome.tag] += 1
            return
        self.latencies.append(seconds)
        if outcome.tag:
            self.by_tag[outcome.tag].append(seconds)

    def summary(self) -> dict[str, Any]:
        figures = summarise(
            self.latencies,
            self.duration,
            errors=sum(self.errors.values()),
            error_kinds=self.errors,
            concurrency=self.concurrency,
        )
        figures.update(self.extra)
        if self.by_tag or self.tag_errors:
            figures["by_tag"] = {
                tag: summarise(
                    self.by_tag.get(tag, []), self.duration, errors=self.tag_errors.get(tag, 0)
                )
                for tag in sorted(set(self.by_tag) | set(self.tag_errors))
            }
        return figures


def _describe(exc: BaseException) -> str:
    return type(exc).__name__


async def run_async(
    request: Callable[[int, int], Awaitable[Outcome]],
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
) -> Measurement:
    """``request(worker, iteration)`` is awaited in a closed loop by ``concurrency`` tasks."""
    measurement = Measurement(concurrency=concurrency, duration=duration)
    clock = time.perf_counter
    begin = clock() + warmup
    end = begin + duration

    async def worker(number: int) -> None:
        iteration = 0
        while True:
            started = clock()
            if started >= end:
                return
            try:
                outcome = await request(number, iteration)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                outcome = Outcome(error=_describe(exc))
            if started >= begin:
                measurement.record(clock() - started, outcome)
            iteration += 1

    await asyncio.gather(*(worker(number) for number in range(concurrency)))
    return measurement


def run_threads(
    make_worker: Callable[[int], tuple[Callable[[int], Outcome], Callable[[], None]]],
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
) -> Measurement:
    """``make_worker(number)`` returns ``(call, close)`` for one thread (its own connection);
    ``call(iteration)`` is called in a closed loop. Workers are made before the clock starts."""
    measurement = Measurement(concurrency=concurrency, duration=duration)
    lock = threading.Lock()
    workers = [make_worker(number) for number in range(concurrency)]
    clock = time.perf_counter
    gate = threading.Barrier(concurrency + 1)
    window: dict[str, float] = {}
    failures: list[BaseException] = []

    def loop(call: Callable[[int], Outcome]) -> None:
        gate.wait()
        begin, end = window["begin"], window["end"]
        local: list[tuple[float, Outcome]] = []
        iteration = 0
        try:
            while True:
                started = clock()
                if started >= end:
                    break
                try:
                    outcome = call(iteration)
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    outcome = Outcome(error=_describe(exc))
                if started >= begin:
                    local.append((clock() - started, outcome))
                iteration += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failures.append(exc)
        with lock:
            for seconds, outcome in local:
                measurement.record(seconds, outcome)

    threads = [
        threading.Thread(target=loop, args=(call,), daemon=True, name=f"bench-{number}")
        for number, (call, _) in enumerate(workers)
    ]
    try:
        for thread in threads:
            thread.start()
        window["begin"] = clock() + warmup
        window["end"] = window["begin"] + duration
        gate.wait()
        for thread in threads:
            thread.join()
    finally:
        for _, close in workers:
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass
    if failures:
        raise failures[0]
    return measurement


async def run_async_at_rate(
    request: Callable[[int, int], Awaitable[Outcome]],
    rate: float,
    duration: float,
    warmup: float = 0.0,
    max_in_flight: int = 256,
) -> Measurement:
    """An open loop: ``request(0, n)`` is started every ``1 / rate`` seconds on a fixed
    schedule, whether or not earlier ones were answered (so a slow answer cannot slow the
    offered load, as it would in a closed loop). Latency runs from the scheduled start, so a
    request delayed by a full client counts its wait too; past ``max_in_flight`` unanswered
    requests the next one is counted as ``overloaded`` instead of being sent."""
    measurement = Measurement(concurrency=0, duration=duration)
    measurement_rate = {"offered_per_s": rate}
    clock = time.perf_counter
    begin = clock() + warmup
    end = begin + duration
    interval = 1.0 / rate
    in_flight: set[asyncio.Task] = set()
    peak = 0

    async def one(number: int, scheduled: float) -> None:
        try:
            outcome = await request(0, number)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
            outcome = Outcome(error=_describe(exc))
        if scheduled >= begin:
            measurement.record(clock() - scheduled, outcome)

    start = clock()
    number = 0
    while True:
        scheduled = start + number * interval
        if scheduled >= end:
            break
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            if scheduled >= begin:
                measurement.record(0.0, Outcome(error="overloaded"))
        else:
            task = asyncio.create_task(one(number, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            peak = max(peak, len(in_flight))
        number += 1
    if in_flight:
        await asyncio.gather(*in_flight)
    measurement.concurrency = peak
    measurement.extra = {**measurement_rate, "peak_in_flight": peak}
    return measurement
