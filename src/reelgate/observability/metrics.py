"""Prometheus metrics of one app, in a registry of its own (several apps may live in one process).

    reelgate_http_requests_total{method,route,status}     requests, by route template (not raw path)
    reelgate_http_request_duration_seconds{method,route}  until the response is complete (streams too)
    reelgate_tasks_total{model,status}                    tasks that ended: completed or failed
    reelgate_queue_depth                                  tasks queued in the database, read at scrape
    reelgate_queue_depth_by_backend{backend}              the same, by backend
    reelgate_claim_seconds                                a worker's claim statement (taken or not)
    reelgate_notification_lag_seconds                     from a task write to its NOTIFY here (PostgreSQL)
    reelgate_leases_lost_total                            attempts stopped: another worker owns the task
    reelgate_generation_seconds{backend}                  successful backend.generate calls
    reelgate_active_streams                               chat streams being sent right now
    reelgate_charged_credits_total{model}                 credits charged for accepted tasks
    reelgate_refunded_credits_total{model}                credits given back for failed tasks
    reelgate_background_requests_total{client,template}   chat clients' background requests answered free

Counters count what this process did; sum them over processes. The queue depth is the database's,
the same in every process.

`reelgate serve --processes N` runs prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`
names a folder of per-process files): whichever process answers `/metrics` adds up all of them, so every
scrape gets the whole server's figures, counters of processes that have ended included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from reelgate.money import MICROS_PER_CREDIT
from reelgate.tasks.models import Task, TaskStatus

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
GENERATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: How much each completed task moves its backend's typical turnaround: about the last ten count.
TYPICAL_WEIGHT = 0.2
#: The variable naming the folder of the server processes' metric files (prometheus_client reads it).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "reelgate_http_requests", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "reelgate_http_request_duration_seconds",
            "Time until the response was complete.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.tasks = Counter("reelgate_tasks", "Tasks that ended, by final status.", ["model", "status"], registry=r)
        self.queue_depth = Gauge("reelgate_queue_depth", "Tasks queued in the database.", registry=r)
        self.queue_depth_by_backend = Gauge(
            "reelgate_queue_depth_by_backend", "Tasks queued in the database, by backend.", ["backend"], registry=r
        )
        self.claim_seconds = Histogram(
            "reelgate_claim_seconds", "Time a worker's claim took.", buckets=HTTP_BUCKETS, registry=r
        )
        self.notification_lag = Histogram(
            "reelgate_notification_lag_seconds",
            "Time from a task write to its notification arriving in this process.",
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.leases_lost = Counter(
            "reelgate_leases_lost", "Attempts stopped because another worker owns their task.", registry=r
        )
        self.generation_seconds = Histogram(
            "reelgate_generation_seconds",
            "Seconds a backend took to generate a video.",
            ["backend"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.active_streams = Gauge(
            "reelgate_active_streams", "Chat streams being sent.", registry=r, multiprocess_mode="livesum"
        )
        self.charged = Counter("reelgate_charged_credits", "Credits charged for tasks.", ["model"], registry=r)
        self.refunded = Counter("reelgate_refunded_credits", "Credits refunded for tasks.", ["model"], registry=r)
        self.storage_errors = Counter(
            "reelgate_storage_errors", "Storage bucket operations that failed, by operation.", ["operation"], registry=r
        )
        self.background = Counter(
            "reelgate_background_requests",
            "Chat clients' background requests answered without a task or a charge.",
            ["client", "template"],
            registry=r,
        )
        #: Each backend's recent turnaround (accepted to completed) in seconds, a moving average.
        self._typical: dict[str, float] = {}
        #: The labelled series that every request touches, kept: `labels()` checks and locks each time.
        self._requests: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._charged: dict[str, Counter] = {}

    def claimed(self, seconds: float) -> None:
        self.claim_seconds.observe(seconds)

    def lease_lost(self) -> None:
        self.leases_lost.inc()

    def set_queue_depth(self, by_backend: dict[str, int]) -> None:
        self.queue_depth.set(sum(by_backend.values()))
        self.queue_depth_by_backend.clear()
        for backend, depth in by_backend.items():
            self.queue_depth_by_backend.labels(backend).set(depth)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        counted = self._requests.get((method, route, status))
        if counted is None:
            counted = self._requests[method, route, status] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
        counter, histogram = counted
        counter.inc()
        histogram.observe(seconds)

    def task_charged(self, task: Task) -> None:
        charged = self._charged.get(task.model)
        if charged is None:
            charged = self._charged[task.model] = self.charged.labels(task.model)
        charged.inc(task.price / MICROS_PER_CREDIT)

    def task_ended(self, task: Task, *, refunded: bool = False) -> None:
        self.tasks.labels(task.model, task.status.value).inc()
        if refunded:
            self.refunded.labels(task.model).inc(task.price / MICROS_PER_CREDIT)
        if task.status is TaskStatus.COMPLETED and task.completed_at is not None:
            seconds = (task.completed_at - task.created_at).total_seconds()
            last = self._typical.get(task.backend, seconds)
            self._typical[task.backend] = last + TYPICAL_WEIGHT * (seconds - last)

    def typical_turnaround(self, backend: str) -> float | None:
        """Seconds from accepted to completed a task of `backend` has recently taken in this process (None
        before the first): what a client waiting for one can expect."""
        return self._typical.get(backend)

    @contextmanager
    def generating(self, backend: str) -> Iterator[None]:
        """Time the block; only a block that ends without an exception is observed."""
        started = time.perf_counter()
        yield
        self.generation_seconds.labels(backend).observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        folder = os.environ.get(MULTIPROCESS_DIR)
        return generate_latest(AllProcesses(self, Path(folder)) if folder else self.registry)


class AllProcesses:
    """Every server process's metrics added up from their files, but the queue depth: this process has just
    read it from the database, and another's last reading may be older (or name a backend since emptied)."""

    def __init__(self, metrics: Metrics, folder: Path) -> None:
        self._metrics = metrics
        self._folder = folder

    def collect(self) -> Iterable[Metric]:
        forget_dead_processes(self._folder)
        queue = (self._metrics.queue_depth, self._metrics.queue_depth_by_backend)
        read_here = [family for gauge in queue for family in gauge.collect()]
        names = {family.name for family in read_here}
        yield from (f for f in MultiProcessCollector(None, str(self._folder)).collect() if f.name not in names)
        yield from read_here


def forget_dead_processes(folder: Path) -> None:
    """Drop the live gauges (open streams) of processes that are gone, killed ones too: their streams
    ended with them. Their counters stay, so that totals never go down."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _alive(pid):
            mark_process_dead(pid, str(folder))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True
