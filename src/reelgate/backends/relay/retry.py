"""Asking again: exponential backoff with jitter, and the upstream's Retry-After when it sends one."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reelgate.backends.relay.faults import UpstreamError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff: float
    max_wait: float
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, error: UpstreamError) -> float:
        """Seconds before try `attempt + 1`: Retry-After if given (capped), else backoff with jitter.

        >>> RetryPolicy(3, 1.0, 60).delay(0, UpstreamError("429", retryable=True, retry_after=2.5))
        2.5
        """
        if error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        ceiling = min(self.max_wait, self.backoff * 2**attempt)
        return ceiling * self.rng.uniform(0.5, 1.0)

    async def run(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call()`, tried again after retryable errors up to `retries` times; the last error otherwise."""
        attempt = 0
        while True:
            try:
                return await call()
            except UpstreamError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                wait = self.delay(attempt, exc)
                log.info("%s failed (%s); trying again in %.2f s", what, exc.message, wait)
                await asyncio.sleep(wait)
                attempt += 1
