"""Sending due webhook deliveries, on the Standard Webhooks retry schedule.

Every process runs `send_forever`; a delivery is leased by a conditional update before each attempt, so
two processes do not send it at once (a process killed mid-send leaves the lease to expire and the next
sweep sends again: at least once, same `webhook-id`). A 2xx delivers; a 410 disables the endpoint; any
other answer or a failure to connect waits the next step of the schedule, or `Retry-After` if longer,
and when the schedule runs out the delivery fails and its endpoint is disabled. URLs pass the same SSRF
checks as reference images, at every attempt, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks import Webhook

from reelgate.errors import InvalidRequest
from reelgate.inputs.fetch import FetchPolicy, pinned, vet_url
from reelgate.settings import Settings
from reelgate.webhooks import store
from reelgate.webhooks.store import DELIVERED, Delivery, Endpoint

log = logging.getLogger(__name__)

PARAM = "url"


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: the HTTP status (None when nothing answered) and the wait it asked for."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


#: Deliveries deleted per transaction when pruning (`store.prune`'s default).
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class SendPolicy:
    schedule: Sequence[float]  #: seconds to wait after the 1st, 2nd, ... failed attempt
    fetch: FetchPolicy
    poll_seconds: float = 1.0


def send_policy(settings: Settings) -> SendPolicy:
    """How webhooks are sent: the retry schedule, and the reference images' SSRF rules for the URLs."""
    fetch = FetchPolicy(timeout=settings.webhook_timeout, allow=tuple(settings.image_fetch_allow))
    return SendPolicy(tuple(settings.webhook_retry_seconds), fetch, settings.webhook_poll_seconds)


async def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse (InvalidRequest) a URL the sender would refuse: not http(s), or a private address not allowed."""
    try:
        async with asyncio.timeout(5):
            await vet_url(url, policy, param=PARAM)
    except TimeoutError as exc:
        raise InvalidRequest("url's host could not be resolved in time.", param=PARAM) from exc


def headers_for(endpoint: Endpoint, delivery: Delivery, now: datetime) -> dict[str, str]:
    signature = Webhook(endpoint.secret).sign(delivery.id, now, delivery.payload)
    return {
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "reelgate-webhooks",
    }


async def post(endpoint: Endpoint, delivery: Delivery, policy: FetchPolicy) -> Attempt:
    try:
        async with asyncio.timeout(policy.timeout):
            url, address = await vet_url(endpoint.url, policy, param=PARAM)
            target, host, extensions = pinned(url, address)
            headers = {**headers_for(endpoint, delivery, datetime.now(UTC)), **host}
            async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=policy.timeout) as client:
                reply = await client.post(target, content=delivery.payload, headers=headers, extensions=extensions)
    except InvalidRequest as exc:
        return Attempt(None, exc.message)
    except (TimeoutError, httpx.HTTPError) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return Attempt(reply.status_code, None, _retry_after(reply.headers.get("retry-after")))


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def send_due(engine: AsyncEngine, policy: SendPolicy) -> int:
    """Attempt every delivery that is due, concurrently; how many were attempted."""
    async with engine.begin() as conn:
        candidates = await store.due(conn, datetime.now(UTC))
    return sum(await asyncio.gather(*(_send_one(engine, delivery, policy) for delivery in candidates)))


async def _send_one(engine: AsyncEngine, delivery: Delivery, policy: SendPolicy) -> int:
    lease_until = datetime.now(UTC) + timedelta(seconds=policy.fetch.timeout * 2)
    async with engine.begin() as conn:
        if not await store.lease(conn, delivery, lease_until):
            return 0
        endpoint = await store.get_endpoint(conn, delivery.endpoint_id)
    if endpoint is None:
        return 0
    attempt = await post(endpoint, delivery, policy.fetch)
    async with engine.begin() as conn:
        await _settle(conn, endpoint, delivery, attempt, policy.schedule)
    return 1


async def _settle(
    conn: AsyncConnection, endpoint: Endpoint, delivery: Delivery, attempt: Attempt, schedule: Sequence[float]
) -> None:
    attempts = delivery.attempts + 1
    now = datetime.now(UTC)
    common = {"attempts": attempts, "last_status": attempt.status, "last_error": attempt.error}
    if attempt.delivered:
        await store.record(conn, delivery.id, state=DELIVERED, next_attempt_at=None, delivered_at=now, **common)
        return
    if attempt.status == 410:
        await store.record(conn, delivery.id, **common)
        await store.disable_endpoint(conn, endpoint.id, "the endpoint answered 410 Gone")
        return
    if attempts > len(schedule):
        await store.record(conn, delivery.id, **common)
        await store.disable_endpoint(conn, endpoint.id, f"delivery failed {attempts} times; retries exhausted")
        return
    wait = max(schedule[attempts - 1], attempt.retry_after or 0.0)
    await store.record(conn, delivery.id, next_attempt_at=now + timedelta(seconds=wait), **common)


async def send_forever(engine: AsyncEngine, policy: SendPolicy) -> None:
    while True:
        try:
            await send_due(engine, policy)
        except Exception:
            log.exception("webhook sweep failed; trying again")
        await asyncio.sleep(policy.poll_seconds)


async def prune_forever(engine: AsyncEngine, keep: timedelta, every_seconds: float) -> None:
    """Delete ended deliveries older than `keep`, now and every `every_seconds`; pending ones always stay."""
    while True:
        try:
            await prune_ended(engine, datetime.now(UTC) - keep)
        except Exception:
            log.exception("webhook delivery pruning failed; trying again")
        await asyncio.sleep(every_seconds)


async def prune_ended(engine: AsyncEngine, before: datetime) -> int:
    """Delete every ended delivery created before `before`, a batch per transaction; how many."""
    total = 0
    while True:
        async with engine.begin() as conn:
            removed = await store.prune(conn, before)
        total += removed
        if removed < PRUNE_BATCH:
            if total:
                log.info("pruned %d ended webhook deliveries created before %s", total, before.isoformat())
            return total
