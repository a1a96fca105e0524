"""Ending a task as failed, with its money settled in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.billing import ledger
from reelgate.errors import is_server_fault
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskError

if TYPE_CHECKING:
    from reelgate.catalog import RefundOn

#: The code of a video a safety system refused (a model with `refund_on = "moderation"` gives it back).
MODERATION_CODE = "content_policy_violation"


async def fail_task(
    conn: AsyncConnection,
    task_id: str,
    error: TaskError,
    now: datetime,
    *,
    refund: bool | RefundOn,
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


def refunds(error: TaskError, policy: bool | RefundOn) -> bool:
    """Whether a failure is given back: always when the server caused it (storage, database, a crash, a
    lost worker), otherwise (a refused prompt, an upstream failure) as the operator's `policy` says: the
    server's `charge_on_failure` as a bool, or a model's `refund_on`."""
    if is_server_fault(error.code) or policy is True or policy == "any_failure":
        return True
    return policy == "moderation" and error.code == MODERATION_CODE
