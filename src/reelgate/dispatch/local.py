"""The embedded dispatcher: an asyncio queue drained by N worker slots in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class LocalDispatcher:
    def __init__(self, run: Callable[[str], Awaitable[None]], slots: int) -> None:
        self._run = run
        self._slots = slots
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    def submit(self, task_id: str) -> None:
        if task_id not in self._pending:
            self._pending.add(task_id)
            self._queue.put_nowait(task_id)

    async def start(self) -> None:
        self._workers = [asyncio.create_task(self._slot(), name=f"reelgate-slot-{i}") for i in range(self._slots)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    @property
    def alive(self) -> bool:
        return bool(self._workers) and not any(worker.done() for worker in self._workers)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def _slot(self) -> None:
        while True:
            task_id = await self._queue.get()
            try:
                await self._run(task_id)
            except Exception:
                log.exception("task %s: the worker raised", task_id, extra={"task_id": task_id})
            finally:
                self._pending.discard(task_id)
