"""The dispatcher port."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    def submit(self, task_id: str) -> None:
        """Arrange for the task to be run; submitting a task already pending here is a no-op."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...
