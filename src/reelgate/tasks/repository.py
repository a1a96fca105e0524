"""SQL for tasks. Status changes go through `apply`, which enforces `lifecycle`'s transitions."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    String,
    Update,
    any_,
    bindparam,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.events.postgres import notify, notify_all
from reelgate.store.db import insert_rows, plain_rows
from reelgate.store.paging import Page, PageRequest, fetch_page
from reelgate.store.tables import tasks
from reelgate.tasks import lifecycle
from reelgate.tasks.lifecycle import Transition
from reelgate.tasks.models import Task, TaskError, TaskStatus
from reelgate.webhooks import store as webhooks


async def insert_task(conn: AsyncConnection, task: Task, request_hash: str | None = None) -> None:
    await conn.execute(insert(tasks).values(task_row(task, request_hash)))
    await notify(conn, task)


def insert_tasks(conn: Connection, new: list[tuple[Task, str | None]]) -> None:
    """Insert tasks (each with its request hash) in one statement, as `insert_task` would one by one
    (synchronous, as the group admissions run: `tasks/admission.py`)."""
    if new:
        insert_rows(conn, tasks, [task_row(task, request_hash) for task, request_hash in new])
        notify_all(conn, [task for task, _ in new])


def task_row(task: Task, request_hash: str | None) -> dict[str, Any]:
    """The row that stores `task` (and the request hash an identical request is joined by)."""
    values = {k: v for k, v in task.__dict__.items() if k != "error"}
    values["request_hash"] = request_hash
    values["status"] = task.status.value
    values["orientation"] = task.orientation.value
    return values


async def get_task(conn: AsyncConnection, task_id: str) -> Task | None:
    row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one_or_none()
    return Task.from_row(row) if row else None


async def apply(conn: AsyncConnection, task_id: Any, transition: Transition, *extra: Any, **values: Any) -> Task | None:
    """Make `transition` if the task is in one of its source states; the updated task, or None.

    `extra` holds further WHERE clauses (e.g. "the heartbeat is still stale"). On PostgreSQL the change
    is announced at commit (`events/postgres.py`).
    """
    row = (await conn.execute(_transition(task_id, transition, extra, values))).one_or_none()
    if row is None:
        return None
    task = Task.from_row(row)
    await notify(conn, task)
    return task


def apply_sync(conn: Connection, task_id: Any, transition: Transition, *extra: Any, **values: Any) -> Task | None:
    """`apply` on a synchronous connection (`store.db.run_sync`: the worker's writes on SQLite)."""
    return _applied(conn, conn.execute(_transition(task_id, transition, extra, values)).one_or_none())


def _applied(conn: Connection, row: Any) -> Task | None:
    """The task a transition's UPDATE ... RETURNING changed (announced at commit), or None."""
    if row is None:
        return None
    task = Task.from_row(row)
    notify_all(conn, [task])
    return task


def _built(transition: Transition, *extra: Any, **values: Any) -> Update:
    """A transition's UPDATE built once, for `_running_write`: the task's id is bound as `task_id`, and
    the other values bound by name at each execution."""
    return _transition(bindparam("task_id"), transition, extra, values)


def _running_write(conn: Connection, statement: Update, task_id: str, **values: Any) -> Task | None:
    """Run a statement built once (`_built`) for `task_id`: the writes a worker makes for every task.
    Building a transition's UPDATE ... RETURNING anew cost twice what SQLite took to run it (335 against
    115 us), and a render makes three or more of them on the event loop; on SQLite the driver runs it
    (`plain_rows`), which spares SQLAlchemy's execution of it and its reading of every column."""
    rows = plain_rows(conn, statement, {"task_id": task_id, **values})
    return _applied(conn, rows[0] if rows else None)


def _transition(task_id: Any, transition: Transition, extra: Collection[Any], values: dict[str, Any]) -> Update:
    return (
        update(tasks)
        # Each source status a parameter of its own with its value: `IN` a list would expand at each execution
        # (and keep the driver from running the statement: `plain_rows`).
        .where(tasks.c.id == task_id, tasks.c.status.in_([literal(s.value) for s in transition.sources]), *extra)
        .values(status=transition.target.value, **values)
        .returning(*tasks.c)
    )


async def claim(
    conn: AsyncConnection, task_id: str, worker_id: str, now: datetime, backends: Collection[str] | None = None
) -> Task | None:
    """Take a queued task for this worker; with `backends`, only a task of one of them."""
    return await apply(conn, task_id, lifecycle.CLAIM, *_of_backends(backends), **_claimed(worker_id, now))


def claim_sync(
    conn: Connection, task_id: str, worker_id: str, now: datetime, backends: Collection[str] | None = None
) -> Task | None:
    """`claim` on a synchronous connection (`store.db.run_sync`)."""
    if backends is None:
        return _running_write(conn, _CLAIM, task_id, new_worker_id=worker_id, now=now)
    return _running_write(conn, _claim_of(tuple(sorted(backends))), task_id, new_worker_id=worker_id, now=now)


def _of_backends(backends: Collection[str] | None) -> list[ColumnElement[bool]]:
    return [tasks.c.backend.in_(list(backends))] if backends is not None else []


def _claimed(worker_id: str | BindParameter[Any], now: datetime | BindParameter[Any]) -> dict[str, Any]:
    """What a claim writes: a new attempt, owned by `worker_id`, its lease starting `now`."""
    return {
        "attempts": tasks.c.attempts + 1,
        "worker_id": worker_id,
        "started_at": now,
        "heartbeat_at": now,
        "progress": 0,
    }


async def claim_next(
    conn: AsyncConnection, worker_id: str, now: datetime, backends: Collection[str] | None = None
) -> Task | None:
    """PostgreSQL: take the oldest queued task (of `backends`) in one statement; None when there is none.

    `FOR UPDATE SKIP LOCKED` lets any number of workers claim at once: each skips the rows another is
    taking instead of waiting on them, and no two take the same task.
    """
    oldest = select(tasks.c.id).where(tasks.c.status == TaskStatus.QUEUED.value)
    if backends is not None:
        mine = bindparam("mine", list(backends), type_=ARRAY(String))
        oldest = oldest.where(tasks.c.backend == any_(mine))
    oldest = oldest.order_by(tasks.c.created_at).limit(1).with_for_update(skip_locked=True)
    return await apply(
        conn,
        oldest.scalar_subquery(),
        lifecycle.CLAIM,
        **_claimed(worker_id, now),
    )


def fence(attempt: int | None) -> list[ColumnElement[bool]]:
    """The WHERE clause that confines a worker's write to its own attempt (none when `attempt` is None).

    Every claim counts one more attempt, so a worker that lost its lease (the recovery sweep requeued
    the task and another worker claimed it) matches no row: its late writes change nothing.
    """
    return [tasks.c.attempts == attempt] if attempt is not None else []


async def set_progress(
    conn: AsyncConnection, task_id: str, progress: int, now: datetime, *, attempt: int | None = None
) -> Task | None:
    """Record progress (never lower than what is stored) and refresh the heartbeat."""
    return await apply(conn, task_id, lifecycle.PROGRESS, *_not_lower(progress, attempt), **_progressed(progress, now))


def set_progress_sync(conn: Connection, task_id: str, progress: int, now: datetime, *, attempt: int) -> Task | None:
    """`set_progress` on a synchronous connection (`store.db.run_sync`), as the worker of `attempt` writes it."""
    return _running_write(conn, _PROGRESS, task_id, at_most=progress, new_progress=progress, now=now, attempt=attempt)


def _not_lower(progress: int, attempt: int | None) -> list[ColumnElement[bool]]:
    return [tasks.c.progress <= progress, *fence(attempt)]


def _progressed(progress: int, now: datetime) -> dict[str, Any]:
    return {"progress": progress, "heartbeat_at": now}


async def save_backend_state(
    conn: AsyncConnection, task_id: str, state: str, now: datetime, *, attempt: int | None = None
) -> bool:
    """Keep the backend's checkpoint of a running task (and refresh its heartbeat); whether it was kept."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.IN_PROGRESS.value, *fence(attempt))
        .values(backend_state=state, heartbeat_at=now)
    )
    return bool(result.rowcount)


async def heartbeat(conn: AsyncConnection, task_id: str, now: datetime, *, attempt: int | None = None) -> bool:
    """Renew the lease of a running task; False when it is no longer running (as `attempt`)."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.IN_PROGRESS.value, *fence(attempt))
        .values(heartbeat_at=now)
    )
    return bool(result.rowcount)


def renew_lease(conn: Connection, task_id: str, now: datetime, *, attempt: int) -> Task | None:
    """`heartbeat` on a synchronous connection (`store.db.run_sync`), returning the running task (whose
    `deleted_at` says whether it was deleted meanwhile); None when it is no longer running as `attempt`.
    Like `heartbeat`, announced to no one: nothing a client sees changed."""
    row = conn.execute(_RENEW, {"task_id": task_id, "now": now, "attempt": attempt}).one_or_none()
    return Task.from_row(row) if row else None


def complete_sync(
    conn: Connection,
    task_id: str,
    *,
    share_id: str,
    video_file: str,
    thumbnail_file: str,
    now: datetime,
    attempt: int | None = None,
) -> Task | None:
    """Complete a running task with its stored files, its webhook deliveries written in the same transaction;
    None if it was not in progress (as `attempt`). Synchronous, as the worker writes it (`store.db.run_sync`):
    an async connection runs it with `conn.run_sync(complete_sync, ...)`."""
    files = {"share_id": share_id, "video_file": video_file, "thumbnail_file": thumbnail_file}
    if attempt is None:
        task = apply_sync(conn, task_id, lifecycle.COMPLETE, progress=100, **files, completed_at=now)
    else:
        named = {f"new_{name}": value for name, value in files.items()}
        task = _running_write(conn, _COMPLETE, task_id, **named, now=now, attempt=attempt)
    if task is not None:
        webhooks.enqueue_sync(conn, task, now)
    return task


async def fail(
    conn: AsyncConnection, task_id: str, error: TaskError, now: datetime, *, attempt: int | None = None
) -> Task | None:
    task = await apply(
        conn,
        task_id,
        lifecycle.FAIL,
        *fence(attempt),
        error_code=error.code,
        error_message=error.message,
        completed_at=now,
    )
    return await _announced(conn, task, now)


async def _announced(conn: AsyncConnection, task: Task | None, now: datetime) -> Task | None:
    """The ended task, its webhook deliveries written in the same transaction (none if it did not end here)."""
    if task is not None:
        await webhooks.enqueue(conn, task, now)
    return task


async def requeue(
    conn: AsyncConnection, task_id: str, *, stale_before: datetime | None = None, attempt: int | None = None
) -> Task | None:
    """Put an in-progress task back in the queue; with `stale_before`, only if its heartbeat is older."""
    guard = [tasks.c.heartbeat_at < stale_before] if stale_before else []
    return await apply(conn, task_id, lifecycle.REQUEUE, *guard, *fence(attempt), worker_id=None, progress=0)


async def stale_tasks(conn: AsyncConnection, stale_before: datetime) -> list[Task]:
    rows = await conn.execute(
        select(tasks).where(tasks.c.status == TaskStatus.IN_PROGRESS.value, tasks.c.heartbeat_at < stale_before)
    )
    return [Task.from_row(row) for row in rows]


async def queued_ids(conn: AsyncConnection, backends: Collection[str] | None = None) -> list[str]:
    """Queued tasks, oldest first; with `backends`, only those of these backends."""
    query = select(tasks.c.id).where(tasks.c.status == TaskStatus.QUEUED.value)
    if backends is not None:
        query = query.where(tasks.c.backend.in_(list(backends)))
    rows = await conn.execute(query.order_by(tasks.c.created_at))
    return [row.id for row in rows]


async def page_for_key(
    conn: AsyncConnection, key_id: str, page: PageRequest, *, include_deleted: bool = True
) -> Page[Task]:
    """A page of the key's tasks, by id (which is creation order)."""
    query = select(tasks).where(tasks.c.key_id == key_id)
    if not include_deleted:
        query = query.where(tasks.c.deleted_at.is_(None))
    return await fetch_page(conn, query, tasks.c.id, page, Task.from_row)


async def mark_deleted(conn: AsyncConnection, task_id: str, now: datetime) -> Task | None:
    """Mark a task deleted (once); None if it already was. On PostgreSQL the change is announced at commit,
    so that a worker rendering it in another process stops at once."""
    row = (
        await conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.deleted_at.is_(None))
            .values(deleted_at=now)
            .returning(*tasks.c)
        )
    ).one_or_none()
    if row is None:
        return None
    task = Task.from_row(row)
    await notify(conn, task)
    return task


async def set_spritesheet(conn: AsyncConnection, task_id: str, key: str) -> bool:
    """Record the task's spritesheet unless another request recorded one first; whether this one won."""
    result = await conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.spritesheet_file.is_(None)).values(spritesheet_file=key)
    )
    return bool(result.rowcount)


async def queued_by_backend(conn: AsyncConnection) -> dict[str, int]:
    """How many tasks wait in the queue, by backend."""
    rows = await conn.execute(
        select(tasks.c.backend, func.count()).where(tasks.c.status == TaskStatus.QUEUED.value).group_by(tasks.c.backend)
    )
    return {backend: int(count) for backend, count in rows}


async def count_with_status(conn: AsyncConnection, status: TaskStatus) -> int:
    return int(await conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.status == status.value)) or 0)


async def expired_tasks(conn: AsyncConnection, now: datetime, limit: int) -> list[Task]:
    """Completed tasks whose files are past `expires_at` and not yet deleted, soonest expired first."""
    rows = await conn.execute(
        select(tasks)
        .where(
            tasks.c.status == TaskStatus.COMPLETED.value,
            tasks.c.files_expired.is_(false()),
            tasks.c.expires_at <= now,
        )
        .order_by(tasks.c.expires_at)
        .limit(limit)
    )
    return [Task.from_row(row) for row in rows]


async def expire_files(conn: AsyncConnection, task_id: str) -> Task | None:
    """Mark a completed task's files deleted; None if it is not completed or was marked already."""
    return await apply(conn, task_id, lifecycle.EXPIRE_FILES, tasks.c.files_expired.is_(false()), files_expired=True)


async def task_for_file(conn: AsyncConnection, key: str) -> Task | None:
    """The task whose video or thumbnail is stored under `key`."""
    row = (
        await conn.execute(select(tasks).where(or_(tasks.c.video_file == key, tasks.c.thumbnail_file == key)))
    ).first()
    return Task.from_row(row) if row else None


async def referenced_files(conn: AsyncConnection, keys: Collection[str]) -> set[str]:
    """Those of `keys` some task keeps (video, thumbnail, spritesheet or reference image), deleted or not."""
    columns = (tasks.c.video_file, tasks.c.thumbnail_file, tasks.c.spritesheet_file, tasks.c.input_image)
    wanted = list(keys)
    rows = await conn.execute(select(*columns).where(or_(*(column.in_(wanted) for column in columns))))
    return {key for row in rows for key in row if key in keys}


async def live_ids(conn: AsyncConnection, task_ids: Collection[str], stale_before: datetime) -> set[str]:
    """Those of `task_ids` in progress with a heartbeat since `stale_before`: attempts still running."""
    rows = await conn.execute(
        select(tasks.c.id).where(
            tasks.c.id.in_(list(task_ids)),
            tasks.c.status == TaskStatus.IN_PROGRESS.value,
            tasks.c.heartbeat_at >= stale_before,
        )
    )
    return {row.id for row in rows}


#: The writes a worker makes for every task (`_running_write`), built once; every one but the claim is
#: confined to the worker's attempt (`fence`).
_ATTEMPT = tasks.c.attempts == bindparam("attempt")
_CLAIM = _built(lifecycle.CLAIM, **_claimed(bindparam("new_worker_id"), bindparam("now")))


@lru_cache(maxsize=8)
def _claim_of(backends: tuple[str, ...]) -> Update:
    """`_CLAIM` for a task of one of `backends` (a process's, the same at each claim), the names fixed in the
    statement."""
    return _built(
        lifecycle.CLAIM,
        tasks.c.backend.in_([literal(backend) for backend in backends]),
        **_claimed(bindparam("new_worker_id"), bindparam("now")),
    )


_PROGRESS = _built(
    lifecycle.PROGRESS,
    tasks.c.progress <= bindparam("at_most"),
    _ATTEMPT,
    progress=bindparam("new_progress"),
    heartbeat_at=bindparam("now"),
)
_COMPLETE = _built(
    lifecycle.COMPLETE,
    _ATTEMPT,
    progress=100,
    share_id=bindparam("new_share_id"),
    video_file=bindparam("new_video_file"),
    thumbnail_file=bindparam("new_thumbnail_file"),
    completed_at=bindparam("now"),
)
_RENEW = (
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"), tasks.c.status == TaskStatus.IN_PROGRESS.value, _ATTEMPT)
    .values(heartbeat_at=bindparam("now"))
    .returning(*tasks.c)
)
