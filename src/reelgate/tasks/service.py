"""The task service: admit (dedupe, limit, charge, insert: one transaction), read, and watch tasks.

It knows nothing of HTTP. Routers call it; workers change tasks through the repository.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.billing import ledger
from reelgate.billing.keys import ApiKey
from reelgate.billing.limits import Limits, RateState, enforce
from reelgate.catalog import ModelEntry
from reelgate.dispatch.base import Dispatcher
from reelgate.errors import NotFound
from reelgate.events.base import EventBus
from reelgate.ids import is_task_id, new_task_id
from reelgate.observability.metrics import Metrics
from reelgate.prompt import PromptSpec
from reelgate.store.tables import api_keys
from reelgate.tasks import dedupe
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskStatus


@dataclass(frozen=True)
class Submission:
    key: ApiKey
    entry: ModelEntry
    spec: PromptSpec
    #: `dedupe.request_hash` of the request, for resend protection and Idempotency-Key checks.
    request_hash: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Admission:
    task: Task
    #: True when the request joined an existing task: no new task, no new charge.
    attached: bool
    rate: RateState | None = None


@dataclass(frozen=True)
class Policy:
    limits: Limits
    resend_protection: bool = True
    #: How long a task's files are kept, counted from when it was accepted (`expires_at` is set then);
    #: None keeps them forever.
    retention: timedelta | None = None


class TaskService:
    def __init__(
        self, engine: AsyncEngine, dispatcher: Dispatcher, bus: EventBus, policy: Policy, metrics: Metrics | None = None
    ) -> None:
        self._engine = engine
        self._dispatcher = dispatcher
        self._bus = bus
        self.policy = policy
        self._metrics = metrics or Metrics()

    async def submit(self, submission: Submission) -> Admission:
        """Attach to the task this request already made, or charge the key and create one.

        Everything happens in one transaction holding the key's row lock, so concurrent requests of
        one key are admitted one at a time: limits and balance can never be overrun by a race.
        """
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await _lock_key(conn, submission.key.id)
            existing = await self._existing(conn, submission, now)
            if existing is not None:
                return Admission(existing, attached=True)
            rate = await enforce(conn, submission.key.id, self.policy.limits.for_key(submission.key), now)
            task = self._new_task(submission, now)
            await ledger.debit(conn, submission.key.id, task.price, task.id)
            await repo.insert_task(conn, task, submission.request_hash)
            if submission.idempotency_key:
                await dedupe.remember(conn, submission.key.id, submission.idempotency_key, task.id, now)
        self._metrics.task_charged(task)
        self._dispatcher.submit(task.id)
        return Admission(task, attached=False, rate=rate)

    async def _existing(self, conn: AsyncConnection, submission: Submission, now: datetime) -> Task | None:
        if submission.idempotency_key:
            return await dedupe.task_for_idempotency_key(
                conn, submission.key.id, submission.idempotency_key, submission.request_hash, now
            )
        if self.policy.resend_protection:
            return await dedupe.running_task_with_hash(conn, submission.request_hash)
        return None

    def _new_task(self, submission: Submission, now: datetime) -> Task:
        entry, spec = submission.entry, submission.spec
        width, height = entry.size_for(spec.orientation)
        retention = self.policy.retention
        return Task(
            id=new_task_id(),
            key_id=submission.key.id,
            model=entry.name,
            backend=entry.backend,
            status=TaskStatus.QUEUED,
            progress=0,
            prompt=spec.prompt,
            orientation=spec.orientation,
            seconds=entry.seconds,
            size=f"{width}x{height}",
            fps=entry.fps,
            seed=secrets.randbits(31),
            price=entry.price,
            created_at=now,
            expires_at=now + retention if retention else None,
        )

    async def get(self, task_id: str) -> Task:
        task = None
        if is_task_id(task_id):
            async with self._engine.connect() as conn:
                task = await repo.get_task(conn, task_id)
        if task is None:
            raise NotFound(f"No task found with id '{task_id}'.", param="id")
        return task

    async def find_by_file(self, key: str) -> Task | None:
        """The task a stored file belongs to, or None."""
        async with self._engine.connect() as conn:
            return await repo.task_for_file(conn, key)

    async def watch(self, task_id: str, poll_seconds: float) -> AsyncGenerator[Task, None]:
        """The task now, then each new snapshot until it ends.

        Snapshots come from the event bus; every `poll_seconds` of silence the row is read again, so
        changes made by another process are seen too. The same snapshot may be yielded twice.
        """
        async with self._bus.subscribe(task_id) as subscription:
            task = await self.get(task_id)
            yield task
            while not task.status.is_final:
                task = await subscription.next(poll_seconds) or await self.get(task_id)
                yield task


async def _lock_key(conn: AsyncConnection, key_id: str) -> None:
    """Take the key's row lock (PostgreSQL) or the write lock (SQLite) for the rest of the transaction."""
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(balance=api_keys.c.balance))
