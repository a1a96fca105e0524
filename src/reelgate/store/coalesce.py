"""Reads that arrive together, made as one: 500 requests authenticated at once cost one query.

A lookup waits for the next read to begin and never joins one already running (which may have begun
before the lookup was asked, and so miss a change made just before it): each answer is as fresh as a
read of its own would have been.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalesced(Generic[K, V]):
    """`get(key)` answered by `read_many(keys)`, one read at a time for every key asked meanwhile.

    >>> async def squares(keys): return {k: k * k for k in keys}
    >>> async def main():
    ...     lookup = Coalesced(squares)
    ...     return await asyncio.gather(lookup.get(2), lookup.get(3), lookup.get(2))
    >>> asyncio.run(main())
    [4, 9, 4]
    """

    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, V]]]) -> None:
        self._read_many = read_many
        self._asked: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        """What the next read finds for `key` (None if nothing); raises what that read raised."""
        answer: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(key, []).append(answer)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_all())
        return await answer

    async def _read_all(self) -> None:
        try:
            while self._asked:
                asked, self._asked = self._asked, {}
                await self._read(asked)
        finally:
            self._reading = None

    async def _read(self, asked: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._read_many(list(asked))
        except Exception as exc:  # every lookup of this read hears why it failed
            for answers in asked.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(exc)
            return
        for key, answers in asked.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(found.get(key))
