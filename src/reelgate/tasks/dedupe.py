"""Finding the task a request already made: explicit Idempotency-Keys and implicit re-sends.

Chat clients re-send an identical request when a reply is slow (Cherry Studio does after 60 s of
silence). Such a request carries the same key, model and messages as one whose task is still running;
it attaches to that task instead of paying for a second video. An `Idempotency-Key` header makes the
same promise explicit, for 24 hours, whatever state the task is in.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.errors import InvalidRequest
from reelgate.store.tables import idempotency_keys, tasks
from reelgate.tasks.models import Task, TaskStatus

IDEMPOTENCY_WINDOW = timedelta(hours=24)
#: `json.dumps(..., ensure_ascii=False, sort_keys=True)` without making an encoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
MAX_IDEMPOTENCY_KEY = 255


def request_hash(key_id: str, model: str, messages: Any) -> str:
    """SHA-256 of the key, the model and the messages with whitespace and unknown fields dropped.

    Nothing else of the request counts: a re-send that differs only in `stream`, `max_tokens`,
    `temperature`, `top_p`, `n` or any other sampling field would make the same video, so it joins.
    """
    payload = {"key": key_id, "model": model, "messages": _normalise(messages)}
    return hashlib.sha256(_encode(payload).encode()).hexdigest()


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, dict):
        return {
            k: _normalise(v) for k, v in value.items() if k in ("role", "content", "type", "text", "image_url", "url")
        }
    return value


def check_idempotency_key(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.", param="Idempotency-Key")
    return value


async def running_task_with_hash(conn: AsyncConnection, digest: str) -> Task | None:
    running = (TaskStatus.QUEUED.value, TaskStatus.IN_PROGRESS.value)
    row = (
        await conn.execute(
            select(tasks)
            .where(tasks.c.request_hash == digest, tasks.c.status.in_(running))
            .order_by(tasks.c.created_at.desc())
            .limit(1)
        )
    ).one_or_none()
    return Task.from_row(row) if row else None


async def task_for_idempotency_key(
    conn: AsyncConnection, key_id: str, idempotency_key: str, digest: str, now: datetime
) -> Task | None:
    """The task an earlier request with this Idempotency-Key made, within 24 h; a stale entry is dropped."""
    this_key = (idempotency_keys.c.key_id == key_id, idempotency_keys.c.idempotency_key == idempotency_key)
    entry = (await conn.execute(select(idempotency_keys).where(*this_key))).one_or_none()
    if entry is None:
        return None
    if entry.created_at <= now - IDEMPOTENCY_WINDOW:
        await conn.execute(delete(idempotency_keys).where(*this_key))
        return None
    row = (await conn.execute(select(tasks).where(tasks.c.id == entry.task_id))).one()
    if row.request_hash != digest:
        raise InvalidRequest("This Idempotency-Key was already used with a different request.", param="Idempotency-Key")
    return Task.from_row(row)


async def remember(conn: AsyncConnection, key_id: str, idempotency_key: str, task_id: str, now: datetime) -> None:
    await conn.execute(
        insert(idempotency_keys).values(key_id=key_id, idempotency_key=idempotency_key, task_id=task_id, created_at=now)
    )
