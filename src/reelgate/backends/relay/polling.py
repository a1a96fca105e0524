"""Polling one upstream job until it ends: the upstream's pace first, then backoff and jitter.

Without a hint from the upstream, a job is polled when its progress, moving at the speed seen so far, says
it will end, or while progress says nothing, at a fraction of its age (`Early`); never later than the
configured pace. A video an upstream makes in one second is seen within a few dozen milliseconds and two
or three polls, while one that takes minutes is soon polled at `poll_interval` and slower.

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

#: A job whose progress says nothing is polled at this fraction of its age, but never more often than
#: every `EARLY_FLOOR` seconds; one whose progress moves, when it says it ends, from `ETA_FLOOR` on.
EARLY_FRACTION = 0.2
EARLY_FLOOR = 0.25
ETA_FLOOR = 0.05

#: Progress reaches the task at most this often (or every `poll_interval`, if that is sooner), the first
#: time after as long: each report is a database write, and the early polls of a young job come four a
#: second (a job done within a second goes from queued to completed).
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
    early = Early()
    reports = Every(min(PROGRESS_EVERY, config.poll_interval))
    doc = first
    errors = 0
    while True:
        if doc is not None:
            _report(doc, watch, reports)
            if doc.phase is JobPhase.COMPLETED:
                return doc
        await asyncio.sleep(pace.wait if pace.hinted or errors else min(pace.wait, early.wait()))
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
        early.observe(doc.progress)


def _report(doc: JobDocument, watch: Watch, reports: Every) -> None:
    if doc.phase is JobPhase.FAILED:
        raise GenerationError(
            doc.error_message or "The upstream could not generate this video.",
            code=safe_code(doc.error_code, "upstream_failed"),
        )
    if doc.progress is not None and doc.phase is not JobPhase.COMPLETED and reports.due():
        watch.progress(doc.progress)


class Every:
    """Says yes at most once per `seconds`, the first time `seconds` after it was made."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True


class Early:
    """The wait before the next poll: until the job's progress, moving as fast as it did since it last
    moved, reaches 100 (from `ETA_FLOOR` on); while progress stands still, a fifth of the job's age.

    >>> now = [0.0]
    >>> early = Early(clock=lambda: now[0])
    >>> early.wait()  # nothing known yet
    0.25
    >>> now[0] = 0.25; early.observe(25); early.wait()  # 25 % in 0.25 s: done in 0.75 s
    0.75
    >>> now[0] = 0.5; early.observe(75); round(early.wait(), 3)  # 50 % more in 0.25 s: done in 0.125 s
    0.125
    >>> now[0] = 10.0; early.observe(None); early.wait()  # no news: a fifth of its age
    2.0
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()
        #: When progress last moved, and to what.
        self._moved = (self._began, 0)
        self._eta: float | None = None

    def observe(self, progress: int | None) -> None:
        now = self._clock()
        when, last = self._moved
        self._eta = None
        if progress is None or progress <= last or progress >= 100:
            return
        speed = (progress - last) / max(now - when, 1e-3)
        self._eta = now + (100 - progress) / speed
        self._moved = (now, progress)

    def wait(self) -> float:
        now = self._clock()
        if self._eta is not None:
            return max(ETA_FLOOR, self._eta - now)
        return max(EARLY_FLOOR, (now - self._began) * EARLY_FRACTION)


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
