"""Prometheus metrics for the whole server, not the one process that
happens to answer ``GET /metrics``.

Every process of a server (the master and each worker, or the single
process) records into ``prometheus_client``'s multi-process directory,
``RUN_DIR/metrics``, which the server empties when it starts; whichever
process answers ``/metrics`` adds them all up. The directory must be set
before ``prometheus_client`` is first imported, so everything here imports
it lazily, and :func:`prepare` runs first thing at start-up.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prepare(run_dir: str) -> Path:
    """Empty this server's metrics directory and point prometheus_client at it
    (inherited by the workers through the environment)."""
    directory = Path(run_dir).resolve() / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[ENV] = str(directory)
    return directory


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "crackershop_http_requests_total",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
        )
        self.latency = Histogram(
            "crackershop_http_request_duration_seconds",
            "Time from dispatch to the end of the response",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = Gauge(
            "crackershop_http_requests_in_flight",
            "Requests being handled now",
            multiprocess_mode="livesum",
        )
        self.rate_limited = Counter(
            "crackershop_rate_limited_total", "Requests refused with 429 by the rate limiter"
        )
        self.mongo_latency = Histogram(
            "crackershop_mongodb_operation_duration_seconds",
            "MongoDB operations, from call to answer",
            buckets=LATENCY_BUCKETS,
        )
        self.mongo_errors = Counter(
            "crackershop_mongodb_errors_total",
            "MongoDB operations that failed or timed out (answered 503)",
        )
        self.worker_restarts = Counter(
            "crackershop_worker_restarts_total", "Workers replaced, by reason", ["reason"]
        )
        # Each worker records its own: the series is in that worker's file,
        # which goes when the worker does (process_dead), so workers that
        # are gone are not listed.
        self.worker_rss = Gauge(
            "crackershop_worker_resident_memory_bytes",
            "Resident memory of each live worker, as it last sampled itself",
            ["worker"],
            multiprocess_mode="liveall",
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests_answered([(route, method, status, seconds)])

    def requests_answered(self, answered: Iterable[tuple[str, str, int, float]]) -> None:
        """Record requests (route, method, status, seconds), added up first:
        each value of the multi-process files is written once per batch, not
        once per request (every write takes a lock and checks the pid)."""
        counts: dict[tuple[str, str, int], int] = {}
        latencies: dict[tuple[str, str], list[float]] = {}
        for route, method, status, seconds in answered:
            key = (route, method, status)
            counts[key] = counts.get(key, 0) + 1
            latencies.setdefault((route, method), []).append(seconds)
        for key, count in counts.items():
            children = self._children.get(key)
            if children is None:
                route, method, status = key
                children = (
                    self.requests.labels(route, method, str(status)),
                    self.latency.labels(route, method),
                )
                self._children[key] = children
            children[0].inc(count)
        for (route, method), values in latencies.items():
            observe_all(self.latency.labels(route, method), values)


def observe_all(histogram: Any, values: Sequence[float]) -> None:
    """``histogram.observe`` of each value, with each bucket and the sum
    written once (through the histogram's own values where it has them)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    hits: dict[int, int] = {}
    for value in values:
        index = bisect.bisect_left(bounds, value)
        hits[index] = hits.get(index, 0) + 1
    total.inc(sum(values))
    for index, count in hits.items():
        buckets[index].inc(count)


STATM = "/proc/self/statm"
_metrics: Optional[Metrics] = None


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (its counters keep counting)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def render() -> bytes:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if not os.environ.get(ENV):
        data: bytes = generate_latest(REGISTRY)
        return data
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    combined: bytes = generate_latest(registry)
    return combined


def resident_bytes() -> Callable[[], Optional[int]]:
    """How to read this process's resident memory: ``/proc/self/statm``
    where there is one (without importing psutil into every worker, about
    1 MB), else psutil."""
    if os.path.exists(STATM):
        page = os.sysconf("SC_PAGE_SIZE")

        def from_proc() -> Optional[int]:
            try:
                with open(STATM, "rb") as f:
                    return int(f.read().split()[1]) * page
            except (OSError, ValueError, IndexError):
                return None

        return from_proc
    import psutil

    process = psutil.Process()

    def from_psutil() -> Optional[int]:
        try:
            return int(process.memory_info().rss)
        except (psutil.Error, OSError):
            return None

    return from_psutil


def record_memory(clock: Any, worker_id: int, every: float = 2.0) -> Any:
    """Sample this worker's resident memory into /metrics every ``every`` seconds."""
    from twisted.internet.task import LoopingCall

    read = resident_bytes()
    gauge = metrics().worker_rss.labels(str(worker_id))

    def sample() -> None:
        rss = read()
        if rss is not None:
            gauge.set(rss)

    loop = LoopingCall(sample)
    loop.clock = clock
    loop.start(every, now=True)
    return loop
