"""Carries a backend's progress (from any thread) to the task row, coalesced, with heartbeats."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class ProgressReporter:
    """Thread-safe `on_progress` callback that writes at most one update at a time.

    Backend progress 0..100 becomes task progress 0..99: the last point is reached only when the
    files are stored and the task is completed. A write or heartbeat that fails (the database is away)
    is logged and tried again later: the generation goes on, and the outcome is what must be recorded.
    """

    def __init__(
        self,
        write: Callable[[int], Awaitable[object]],
        heartbeat: Callable[[], Awaitable[object]],
        heartbeat_seconds: float,
    ) -> None:
        self._write = write
        self._heartbeat = heartbeat
        self._interval = heartbeat_seconds
        self._loop = asyncio.get_running_loop()
        self._latest = 0
        self._written = 0
        self._changed = asyncio.Event()
        self._stopping = False

    def __call__(self, percent: int) -> None:
        self._loop.call_soon_threadsafe(self._update, min(99, max(0, int(percent))))

    def _update(self, percent: int) -> None:
        if percent > self._latest:
            self._latest = percent
            self._changed.set()

    def stop(self) -> None:
        """Ask `run` to return once the write or heartbeat in hand is done (never cut one in half)."""
        self._stopping = True
        self._changed.set()

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
            if self._stopping:
                return
            self._changed.clear()
            await self.flush()

    async def flush(self) -> None:
        if self._latest > self._written:
            written, self._written = self._written, self._latest
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
