"""Ending a task as failed, with its money settled in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.billing import ledger
from reelgate.errors import is_server_fault
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskError


async def fail_task(
    conn: AsyncConnection,
    task_id: str,
    error: TaskError,
    now: datetime,
    *,
    refund: bool,
    attempt: int | None = None,
) -> Task | None:
    """Fail the task and give its charge back when `refunds` says so: both happen or neither.

    Only the caller whose conditional update moved the task to `failed` refunds, so retries,
    restarts and racing processes cannot refund twice; the ledger's unique (task, kind) is a second guard.
    With `attempt`, only that attempt's worker can fail it (a worker that lost its lease refunds nothing).
    """
    task = await repo.fail(conn, task_id, error, now, attempt=attempt)
    if task is not None and refunds(error, refund):
        await ledger.refund(conn, task.key_id, task.price, task.id)
    return task


def refunds(error: TaskError, policy: bool) -> bool:
    """Whether a failure is given back: always when the server caused it (storage, database, a crash, a
    lost worker), otherwise (a refused prompt, an upstream failure) as the operator's `policy` says."""
    return policy or is_server_fault(error.code)
