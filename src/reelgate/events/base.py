"""The event bus port."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from reelgate.tasks.models import Task


class Subscription(Protocol):
    async def next(self, wait_seconds: float) -> Task | None:
        """The next snapshot published for the task, or None after `wait_seconds` of silence; raises the
        error that ended the task's following (its row could not be read)."""
        ...


class EventBus(Protocol):
    def publish(self, task: Task) -> None: ...

    def subscribe(self, task_id: str, current: Task | None = None) -> AbstractAsyncContextManager[Subscription]: ...
