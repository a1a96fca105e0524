"""Webhook endpoints and deliveries in the database.

A task's end writes one pending delivery per active endpoint of its key, in the transaction that ends it
(`enqueue`, called by the task repository), so a crash between the end and the send loses nothing: the
sender (`sender.py`) finds the row after a restart and sends the same body under the same `webhook-id`.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.store.db import plain_rows
from reelgate.store.paging import Page
from reelgate.store.tables import webhook_deliveries, webhook_endpoints
from reelgate.tasks.models import Task, TaskStatus

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
EVENT_TYPES = {TaskStatus.COMPLETED: "video.completed", TaskStatus.FAILED: "video.failed"}


@dataclass(frozen=True)
class Endpoint:
    id: str
    key_id: str
    url: str
    secret: str
    created_at: datetime
    disabled_reason: str | None


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    task_id: str
    event_type: str
    payload: str
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks form OpenAI's SDK verifies."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


async def add_endpoint(conn: AsyncConnection, key_id: str, url: str, now: datetime) -> Endpoint:
    endpoint = Endpoint(f"we_{secrets.token_hex(12)}", key_id, url, new_secret(), now, None)
    await conn.execute(insert(webhook_endpoints).values(**endpoint.__dict__))
    return endpoint


async def endpoints_of(conn: AsyncConnection, key_id: str | None = None) -> list[Endpoint]:
    """Active endpoints (of one key, or all), oldest first."""
    return await conn.run_sync(endpoints_of_sync, key_id)


#: Active endpoints (`endpoints_of_sync`), oldest first: all of them, or one key's.
_ACTIVE = (
    select(webhook_endpoints)
    .where(webhook_endpoints.c.disabled_reason.is_(None))
    .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
)
_ACTIVE_OF_KEY = _ACTIVE.where(webhook_endpoints.c.key_id == bindparam("key_id"))


def endpoints_of_sync(conn: Connection, key_id: str | None = None) -> list[Endpoint]:
    """`endpoints_of` on a synchronous connection. A key's are read at each completion, on SQLite on the
    event loop: by a statement built once, run by the driver (`plain_rows`)."""
    statement, params = (_ACTIVE, {}) if key_id is None else (_ACTIVE_OF_KEY, {"key_id": key_id})
    return [Endpoint(**row._asdict()) for row in plain_rows(conn, statement, params)]


async def get_endpoint(conn: AsyncConnection, endpoint_id: str) -> Endpoint | None:
    row = (await conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))).one_or_none()
    return None if row is None else Endpoint(**row._mapping)


async def disable_endpoint(conn: AsyncConnection, endpoint_id: str, reason: str) -> bool:
    """Stop sending to the endpoint (its pending deliveries fail with `reason`); False if already stopped."""
    result = await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.disabled_reason.is_(None))
        .values(disabled_reason=reason)
    )
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.state == PENDING)
        .values(state=FAILED, next_attempt_at=None, last_error=reason)
    )
    return bool(result.rowcount)


def event_body(event_id: str, event_type: str, task_id: str, now: datetime) -> str:
    """OpenAI's thin event: the task id only; the client fetches the video for the rest."""
    event = {
        "id": event_id,
        "object": "event",
        "created_at": int(now.timestamp()),
        "type": event_type,
        "data": {"id": task_id},
    }
    return json.dumps(event, separators=(",", ":"))


async def enqueue(conn: AsyncConnection, task: Task, now: datetime) -> int:
    """One pending delivery of the task's end event per active endpoint of its key; how many."""
    return await conn.run_sync(enqueue_sync, task, now)


def enqueue_sync(conn: Connection, task: Task, now: datetime) -> int:
    """`enqueue` on a synchronous connection (the worker's completion: `store.db.run_sync`)."""
    event_type = EVENT_TYPES.get(task.status)
    endpoints = endpoints_of_sync(conn, task.key_id) if event_type else []
    if not endpoints or event_type is None:
        return 0
    body = event_body(f"evt_{secrets.token_hex(12)}", event_type, task.id, now)
    rows: list[dict[str, Any]] = [
        {
            "id": f"wh_{secrets.token_hex(12)}",
            "endpoint_id": endpoint.id,
            "task_id": task.id,
            "event_type": event_type,
            "payload": body,
            "created_at": now,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for endpoint in endpoints
    ]
    conn.execute(insert(webhook_deliveries), rows)
    return len(rows)


async def due(conn: AsyncConnection, now: datetime, limit: int = 50) -> list[Delivery]:
    rows = await conn.execute(
        select(webhook_deliveries)
        .where(webhook_deliveries.c.state == PENDING, webhook_deliveries.c.next_attempt_at <= now)
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return [Delivery(**row._mapping) for row in rows]


async def lease(conn: AsyncConnection, delivery: Delivery, until: datetime) -> bool:
    """Take the delivery for one attempt (no other process sends it before `until`); False if taken."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.id == delivery.id,
            webhook_deliveries.c.state == PENDING,
            webhook_deliveries.c.next_attempt_at == delivery.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return bool(result.rowcount)


async def record(conn: AsyncConnection, delivery_id: str, **values: Any) -> None:
    await conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(**values))


async def deliveries(
    conn: AsyncConnection,
    *,
    endpoint_id: str | None = None,
    task_id: str | None = None,
    limit: int = 100,
    after: str | None = None,
) -> Page[Delivery]:
    """Newest first, optionally of one endpoint or one task; `after` is the last delivery id already seen.

    Ids are random, so the cursor is (created_at, id): a page never shifts when new deliveries arrive.
    An `after` that names no delivery (pruned, or never existed) starts from the newest.
    """
    table = webhook_deliveries.c
    query = select(webhook_deliveries)
    if endpoint_id is not None:
        query = query.where(table.endpoint_id == endpoint_id)
    if task_id is not None:
        query = query.where(table.task_id == task_id)
    seen = await get_delivery(conn, after) if after else None
    if seen is not None:
        query = query.where(tuple_(table.created_at, table.id) < tuple_(seen.created_at, seen.id))
    rows = list(await conn.execute(query.order_by(table.created_at.desc(), table.id.desc()).limit(limit + 1)))
    return Page([Delivery(**row._mapping) for row in rows[:limit]], has_more=len(rows) > limit)


async def prune(conn: AsyncConnection, before: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` deliveries that ended (delivered or failed) and were created before `before`."""
    table = webhook_deliveries.c
    ended = (
        select(table.id)
        .where(table.state.in_([DELIVERED, FAILED]), table.created_at < before)
        .order_by(table.created_at)
        .limit(limit)
    )
    result = await conn.execute(delete(webhook_deliveries).where(table.id.in_(ended.scalar_subquery())))
    return int(result.rowcount or 0)


async def get_delivery(conn: AsyncConnection, delivery_id: str) -> Delivery | None:
    row = (await conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id))).one_or_none()
    return None if row is None else Delivery(**row._mapping)


async def resend(conn: AsyncConnection, delivery: Delivery, now: datetime) -> bool:
    """Send the delivery again now (same body, same `webhook-id`), if its endpoint is active."""
    endpoint = await get_endpoint(conn, delivery.endpoint_id)
    if endpoint is None or endpoint.disabled_reason is not None:
        return False
    await record(conn, delivery.id, state=PENDING, next_attempt_at=now)
    return True
