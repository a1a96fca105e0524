"""Carries a backend's progress (from any thread) to the task row, coalesced, with heartbeats."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

log = logging.getLogger(__name__)

#: The least time between two progress writes of a task, and between its start and its first: the steps a
#: render makes meanwhile are written as one. A render of a second writes two instead of one per step, and
#: one that ends within the spacing none (its completion writes 100), each write being taken on the event
#: loop that serves the streams; a client sees the progress change at most twice a second.
PROGRESS_SPACING_SECONDS = 0.5


class ProgressReporter:
    """Thread-safe `on_progress` callback that writes at most one update at a time, and at most one every
    `spacing` seconds.

    Backend progress 0..100 becomes task progress 0..99: the last point is reached only when the
    files are stored and the task is completed. A write or heartbeat that fails (the database is away)
    is logged and tried again later: the generation goes on, and the outcome is what must be recorded.
    """

    def __init__(
        self,
        write: Callable[[int], Awaitable[object]],
        heartbeat: Callable[[], Awaitable[object]],
        heartbeat_seconds: float,
        spacing: float = PROGRESS_SPACING_SECONDS,
    ) -> None:
        self._write = write
        self._heartbeat = heartbeat
        self._interval = heartbeat_seconds
        self._spacing = spacing
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._latest = 0
        self._written = 0
        #: A render's first step is written `spacing` after it started, as if a write had been made then:
        #: one that ends sooner writes none (its completion writes 100).
        self._written_at = time.monotonic()
        self._changed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False

    def __call__(self, percent: int) -> None:
        percent = min(99, max(0, int(percent)))
        if threading.get_ident() == self._loop_thread:  # a backend on the loop (a child's messages, a relay)
            self._update(percent)
        else:  # a backend's own thread
            self._loop.call_soon_threadsafe(self._update, percent)

    def _update(self, percent: int) -> None:
        if percent > self._latest:
            self._latest = percent
            self._changed.set()

    def stop(self) -> None:
        """Ask `run` to return once the write or heartbeat in hand is done (never cut one in half)."""
        self._stopping = True
        self._changed.set()
        self._stopped.set()

    async def run(self) -> None:
        """Write changes as they come and heartbeat in quiet spells, until `stop` (or cancelled)."""
        while not self._stopping:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and this loop would then never stop.
            try:
                async with asyncio.timeout(self._interval):
                    await self._changed.wait()
            except TimeoutError:
                await _logged(self._heartbeat(), "heartbeat")
                continue
            if not await self._spaced():
                return
            self._changed.clear()
            await self.flush()

    async def _spaced(self) -> bool:
        """Wait until `spacing` has passed since the last write; False when stopped meanwhile."""
        pause = self._written_at + self._spacing - time.monotonic()
        if pause > 0 and not self._stopping:
            with suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stopped.wait()
        return not self._stopping

    async def finish(self) -> None:
        """At the render's end: write its last step if the spacing allows one now. The files are stored
        next, then the completion writes 100; a render that ended within the spacing writes nothing more."""
        if time.monotonic() - self._written_at >= self._spacing:
            await self.flush()

    async def flush(self) -> None:
        if self._latest > self._written:
            written, self._written = self._written, self._latest
            self._written_at = time.monotonic()
            if not await _logged(self._write(self._written), "progress write"):
                self._written = written  # the next change or flush writes it again


async def _logged(work: Awaitable[object], what: str) -> bool:
    """Await `work`; False (logged) when it failed."""
    try:
        await work
    except Exception as exc:
        log.warning("%s failed (%r); the generation goes on", what, exc)
        return False
    return True
