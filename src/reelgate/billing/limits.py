"""Per-key request limits, counted from the task table so that every process sharing a database
enforces one limit.

Two limits: requests per minute (tasks and characters a key created in the last 60 s) and concurrency
(its tasks still queued or in progress). Each is checked inside the submitting transaction after the key's row
is locked, so concurrent submissions of one key are counted one after another, never both at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.billing.keys import ApiKey
from reelgate.errors import RateLimited
from reelgate.store.tables import characters, tasks
from reelgate.tasks.models import TaskStatus

WINDOW = timedelta(seconds=60)
IN_FLIGHT = (TaskStatus.QUEUED.value, TaskStatus.IN_PROGRESS.value)


@dataclass(frozen=True)
class Limits:
    """0 means no limit."""

    rpm: int
    concurrency: int

    def for_key(self, key: ApiKey) -> Limits:
        return Limits(
            rpm=self.rpm if key.rpm_limit is None else key.rpm_limit,
            concurrency=self.concurrency if key.concurrency_limit is None else key.concurrency_limit,
        )


@dataclass(frozen=True)
class RateState:
    """What the `x-ratelimit-*` headers report."""

    limit: int
    used: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        if not self.limit:
            return {}
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, self.limit - self.used)),
            "x-ratelimit-reset-requests": f"{self.reset_seconds}s",
        }


async def rate_state(conn: AsyncConnection, key_id: str, limits: Limits, now: datetime) -> RateState:
    """The key's requests of the last minute: its new tasks and its new characters, which share the limit."""
    since = now - WINDOW
    made = union_all(
        select(tasks.c.created_at).where(tasks.c.key_id == key_id, tasks.c.created_at > since),
        select(characters.c.created_at).where(characters.c.key_id == key_id, characters.c.created_at > since),
    ).subquery()
    row = (await conn.execute(select(func.count(), func.min(made.c.created_at)))).one()
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive values from aggregates
        oldest = oldest.replace(tzinfo=now.tzinfo)
    reset = math.ceil((oldest + WINDOW - now).total_seconds()) if oldest else 0
    return RateState(limit=limits.rpm, used=int(row[0]), reset_seconds=max(0, reset))


async def enforce(conn: AsyncConnection, key_id: str, limits: Limits, now: datetime) -> RateState:
    """RateLimited if one more task would break a limit; else the state counting that task."""
    state = await rate_state(conn, key_id, limits, now)
    if limits.rpm and state.used >= limits.rpm:
        raise RateLimited(
            f"Rate limit reached: {limits.rpm} requests per minute. Try again in {state.reset_seconds}s.",
            retry_after=state.reset_seconds,
        )
    if limits.concurrency:
        running = await conn.scalar(select(func.count()).where(tasks.c.key_id == key_id, tasks.c.status.in_(IN_FLIGHT)))
        if int(running or 0) >= limits.concurrency:
            raise RateLimited(
                f"Too many videos in progress: this key may run {limits.concurrency} at once. "
                "Try again when one finishes.",
                retry_after=10,
            )
    return RateState(state.limit, state.used + 1, state.reset_seconds or 60)
