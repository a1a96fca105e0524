"""Finds tasks whose worker died and decides their fate.

A task `in_progress` whose heartbeat is older than the lease belongs to a dead process. It is put
back in the queue and generated again from the start, unless it has already been tried
`max_attempts` times; then it fails with `worker_lost`. Its charge was recorded once, when the task
was accepted; a lost worker is the server's fault, so that failure gives it back once, whatever the
charge-on-failure policy says.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.events.base import EventBus
from reelgate.observability.logging import log_context
from reelgate.observability.metrics import Metrics
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskError
from reelgate.tasks.settle import fail_task, refunds

log = logging.getLogger(__name__)


async def recover(
    engine: AsyncEngine,
    bus: EventBus,
    *,
    lease_seconds: float,
    max_attempts: int,
    refund: bool = False,
    metrics: Metrics | None = None,
    backends: Collection[str] | None = None,
) -> list[str]:
    """Requeue or fail stale tasks; the IDs of the queued tasks (of `backends`), oldest first, to dispatch."""
    now = datetime.now(UTC)
    stale_before = now - timedelta(seconds=lease_seconds)
    ended: list[Task] = []
    async with engine.begin() as conn:
        for task in await repo.stale_tasks(conn, stale_before):
            with log_context(task_id=task.id, key_id=task.key_id):
                changed = await _settle(conn, task, stale_before, now, max_attempts, refund)
            if changed is not None:
                bus.publish(changed)
                ended.append(changed)
        queued = await repo.queued_ids(conn, backends)
    for task in ended:
        if metrics is not None and task.status.is_final:
            metrics.task_ended(task, refunded=task.error is not None and refunds(task.error, refund))
    return queued


async def _settle(
    conn: AsyncConnection, task: Task, stale_before: datetime, now: datetime, max_attempts: int, refund: bool
) -> Task | None:
    if task.attempts < max_attempts:
        log.warning("task %s: its worker died; generating it again (attempt %d)", task.id, task.attempts + 1)
        return await repo.requeue(conn, task.id, stale_before=stale_before, attempt=task.attempts)
    log.warning("task %s: its worker died %d times; failing it", task.id, task.attempts)
    error = TaskError(
        "worker_lost",
        f"The server stopped while generating this video, {task.attempts} times; it was not retried again.",
    )
    return await fail_task(conn, task.id, error, now, refund=refund, attempt=task.attempts)
