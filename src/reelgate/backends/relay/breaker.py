"""A circuit breaker per upstream: after repeated failed creates, stop sending it new videos for a while.

    closed ──N failures in a row──> open ──cool-down over──> half-open (one probe create)
      ^                                ^                          │
      └────────── probe succeeds ──────┼──────────────────────────┤
                                       └────── probe fails ───────┘

It gates creates only. Jobs an upstream already accepted are polled whatever the breaker says: they
are paid for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  #: new videos go to the upstream
    OPEN = "open"  #: it failed too often; nothing is sent until the cool-down ends
    HALF_OPEN = "half_open"  #: cool-down over: the next create is a probe, one at a time


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def available(self) -> bool:
        """Whether a create may be sent now (in half-open, only while no probe is out)."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probing)

    def begin(self) -> None:
        """A create is being sent; in half-open it is the probe."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = True

    def succeeded(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.threshold:
            self._opened_at = self._clock()
        self._probing = False

    def abandoned(self) -> None:
        """The create ended without a verdict (cancelled): let another probe go."""
        self._probing = False
