"""Polling one upstream job until it ends: the upstream's pace first, then backoff and jitter.

Without a hint from the upstream, a young job is polled at a fraction of its age (`early_wait`): a video
an upstream makes in one second is seen within a quarter second, while one that takes minutes is
soon polled at the configured `poll_interval` and slower.

One task has one poll loop, run by the worker that holds the task; everyone watching the task (chat
streams, pages, API polls) reads the task row, never the upstream.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import httpx

from reelgate.backends.relay.documents import JobDocument, JobPhase, read_job
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, safe_code
from reelgate.backends.relay.jobs import Watch
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)

#: How much slower polling gets after each answer in which nothing moved.
SLOWDOWN = 1.5

#: A young job is polled at this fraction of its age, but never more often than every `EARLY_FLOOR` s.
EARLY_FRACTION = 0.2
EARLY_FLOOR = 0.25

#: Progress reaches the task at most this often (or every `poll_interval`, if that is sooner): each report
#: is a database write, and the early polls of a young job come four a second.
PROGRESS_EVERY = 1.0


async def poll(
    exchange: Exchange,
    url: str,
    watch: Watch,
    first: JobDocument | None = None,
    read: Callable[[object], JobDocument] = read_job,
) -> JobDocument:
    """Read the job at `url` (with `read`, the protocol's reader) until it completes; its last document.

    Retryable errors (dropped connections, 5xx, malformed JSON) are waited out with backoff: the job is
    already paid for, and the task's deadline bounds the wait. The upstream's failure is a GenerationError
    carrying its message.
    """
    config = exchange.upstream.config
    pace = Pace(config.poll_interval, config.max_poll_interval)
    began = time.monotonic()
    reports = Every(min(PROGRESS_EVERY, config.poll_interval))
    doc = first
    errors = 0
    while True:
        if doc is not None:
            _report(doc, watch, reports)
            if doc.phase is JobPhase.COMPLETED:
                return doc
        await asyncio.sleep(pace.wait if pace.hinted or errors else min(pace.wait, early_wait(began)))
        try:
            body, response = await exchange.json("GET", url)
            doc = read(body)
        except UpstreamError as exc:
            if not exc.retryable:
                raise
            pace.wait = exchange.upstream.retry.delay(errors, exc)
            errors += 1
            log.info("polling %s failed (%s); again in %.2f s", exchange.upstream.name, exc.message, pace.wait)
            doc = None
            continue
        errors = 0
        pace.advance(doc.progress, poll_after(response))


def _report(doc: JobDocument, watch: Watch, reports: Every) -> None:
    if doc.phase is JobPhase.FAILED:
        raise GenerationError(
            doc.error_message or "The upstream could not generate this video.",
            code=safe_code(doc.error_code, "upstream_failed"),
        )
    if doc.progress is not None and doc.phase is not JobPhase.COMPLETED and reports.due():
        watch.progress(doc.progress)


class Every:
    """Says yes at most once per `seconds`; the first time, always."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


def early_wait(began: float) -> float:
    """The wait before polling a job first polled at `began` (monotonic): a fraction of its age.

    >>> round(early_wait(time.monotonic()), 2), round(early_wait(time.monotonic() - 10), 1)
    (0.25, 2.0)
    """
    return max(EARLY_FLOOR, (time.monotonic() - began) * EARLY_FRACTION)


class Pace:
    """The wait before the next poll: `openai-poll-after-ms` when sent; else slower while nothing moves."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.wait = base
        #: Whether `wait` is the upstream's own (`openai-poll-after-ms`): never poll sooner than that.
        self.hinted = False
        self._last: int | None = None
        self._rng = rng or random.Random()

    def advance(self, progress: int | None, hint: float | None) -> None:
        moved = progress != self._last
        self._last = progress
        self.hinted = hint is not None
        if hint is not None:
            self.wait = hint * self._rng.uniform(1.0, 1.1)  # never sooner than asked
            return
        steady = self.base if moved else min(self.cap, self.wait * SLOWDOWN)
        self.wait = min(self.cap, steady * self._rng.uniform(0.9, 1.1))


def poll_after(response: httpx.Response) -> float | None:
    """OpenAI's `openai-poll-after-ms` header, in seconds."""
    value = response.headers.get("openai-poll-after-ms")
    try:
        return max(0.0, float(value) / 1000) if value else None
    except ValueError:
        return None
