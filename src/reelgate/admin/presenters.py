"""Domain records (keys, ledger entries, tasks, usage rows) -> the admin API's wire shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from reelgate.admin.schemas import (
    CreatedKey,
    KeyObject,
    LedgerEntryObject,
    ObjectList,
    TaskError,
    TaskSummary,
    UsageItem,
    UsageQuery,
    UsageReport,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointObject,
)
from reelgate.billing.keys import ApiKey
from reelgate.billing.ledger import Entry
from reelgate.billing.usage import UsageRow
from reelgate.money import format_credits
from reelgate.store.paging import Page
from reelgate.tasks.models import Task
from reelgate.webhooks.store import Delivery, Endpoint

T = TypeVar("T")
W = TypeVar("W", KeyObject, LedgerEntryObject, TaskSummary)


def unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def key_object(key: ApiKey) -> KeyObject:
    return KeyObject(
        id=key.id,
        name=key.name,
        hint=key.hint,
        balance=format_credits(key.balance),
        disabled=key.disabled,
        deleted=key.deleted,
        created_at=int(key.created_at.timestamp()),
        expires_at=unix(key.expires_at),
        allowed_models=list(key.allowed_models) if key.allowed_models is not None else None,
        rpm_limit=key.rpm_limit,
        concurrency_limit=key.concurrency_limit,
        player_block=key.player_block,
    )


def created_key(key: ApiKey, secret: str) -> CreatedKey:
    return CreatedKey(**key_object(key).model_dump(), secret=secret)


def entry_object(entry: Entry) -> LedgerEntryObject:
    return LedgerEntryObject(
        id=entry.id,
        key_id=entry.key_id,
        task_id=entry.task_id,
        kind=entry.kind.value,
        amount=format_credits(entry.amount),
        balance_after=format_credits(entry.balance_after),
        note=entry.note,
        created_at=int(entry.created_at.timestamp()),
    )


def task_summary(task: Task) -> TaskSummary:
    return TaskSummary(
        id=task.id,
        model=task.model,
        status=task.status.value,
        progress=task.progress,
        price=format_credits(task.price),
        prompt=task.prompt,
        created_at=int(task.created_at.timestamp()),
        completed_at=unix(task.completed_at),
        error=TaskError(code=task.error.code, message=task.error.message) if task.error else None,
    )


def object_list(page: Page[T], present: Callable[[T], W]) -> ObjectList[W]:
    data = [present(item) for item in page.items]
    first: Any = data[0].id if data else None
    last: Any = data[-1].id if data else None
    return ObjectList[W](data=data, has_more=page.has_more, first_id=first, last_id=last)


def usage_report(rows: list[UsageRow], query: UsageQuery) -> UsageReport:
    return UsageReport(
        group_by=query.group_by,
        since=unix(query.since),
        until=unix(query.until),
        data=[_usage_item(row) for row in rows],
    )


def _usage_item(row: UsageRow) -> UsageItem:
    return UsageItem(
        group=row.group[0],
        tasks=row.tasks,
        total_tasks=sum(row.tasks.values()),
        charged=format_credits(row.charged),
        refunded=format_credits(row.refunded),
        net=format_credits(row.net),
        background_requests=row.background,
    )


def endpoint_object(endpoint: Endpoint, *, with_secret: bool = False) -> WebhookEndpointObject:
    return WebhookEndpointObject(
        id=endpoint.id,
        key_id=endpoint.key_id,
        url=endpoint.url,
        created_at=unix(endpoint.created_at),
        disabled_reason=endpoint.disabled_reason,
        secret=endpoint.secret if with_secret else None,
    )


def delivery_object(delivery: Delivery) -> WebhookDeliveryObject:
    return WebhookDeliveryObject(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        task_id=delivery.task_id,
        type=delivery.event_type,
        state=delivery.state,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        next_attempt_at=unix(delivery.next_attempt_at) if delivery.next_attempt_at else None,
        delivered_at=unix(delivery.delivered_at) if delivery.delivered_at else None,
        created_at=unix(delivery.created_at),
        payload=delivery.payload,
    )


def delivery_list(page: Page[Delivery]) -> WebhookDeliveryList:
    data = [delivery_object(delivery) for delivery in page.items]
    first, last = (data[0].id, data[-1].id) if data else (None, None)
    return WebhookDeliveryList(data=data, first_id=first, last_id=last, has_more=page.has_more)
