"""Answers kept for a short time: a key used by every request of a burst is read once, not once a request.

Only found answers are kept (a lookup that found nothing reads again), so keys a client makes up cost a
read each but no memory; the number kept is bounded all the same, the oldest going first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """`get(key)` answered by `read(key)`, or by the same answer read less than `ttl` seconds ago.

    >>> import asyncio
    >>> reads = []
    >>> async def read(key): reads.append(key); return key.upper()
    >>> async def main():
    ...     recent = Recent(read, ttl=60, size=100)
    ...     return [await recent.get("a"), await recent.get("a")]
    >>> asyncio.run(main()), reads
    (['A', 'A'], ['a'])
    """

    def __init__(
        self,
        read: Callable[[K], Awaitable[V | None]],
        *,
        ttl: float,
        size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._size = size
        self._clock = clock
        #: Answers by key, with the time each stops being used; oldest first.
        self._kept: dict[K, tuple[float, V]] = {}
        #: Counts `forget_all` calls: a read that began before one is not kept.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._kept)

    async def get(self, key: K) -> V | None:
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and now < kept[0]:
            return kept[1]
        generation = self._generation
        value = await self._read(key)
        if value is not None:
            self._keep(key, value, now + self._ttl, generation)
        return value

    def forget_all(self) -> None:
        """Read everything afresh from now on (safe from any thread: the dict is replaced, not cleared)."""
        self._generation += 1
        self._kept = {}

    def _keep(self, key: K, value: V, until: float, generation: int) -> None:
        kept = self._kept
        kept.pop(key, None)
        if len(kept) >= self._size:
            del kept[next(iter(kept))]
        kept[key] = (until, value)
        if generation != self._generation:  # forgotten since the read began, perhaps by another thread
            kept.pop(key, None)
