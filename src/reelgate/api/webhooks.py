"""Webhook endpoints: a key's own (`/v1/webhooks`) and the operator's view (`/admin/...webhooks...`).

A new endpoint's secret is in the creation answer only. Deleting an endpoint stops its deliveries.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from reelgate.api.admin import require_admin
from reelgate.api.auth import current_key
from reelgate.api.body import check_parsed_body
from reelgate.api.deps import runtime
from reelgate.api.openapi import KEY_ERRORS, contract, errors
from reelgate.api.schemas import (
    WebhookCreate,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
)
from reelgate.billing.keys import ApiKey
from reelgate.errors import Conflict, InvalidRequest, NotFound
from reelgate.inputs.fetch import vet_url
from reelgate.runtime import webhook_policy
from reelgate.store.tables import api_keys
from reelgate.webhooks import store
from reelgate.webhooks.sender import PARAM

router = APIRouter(tags=["webhooks"])
admin_router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(check_parsed_body)],
    responses=errors(401, 403, 503),
)
Key = Annotated[ApiKey, Depends(current_key)]


def _endpoint(endpoint: store.Endpoint, *, with_secret: bool = False) -> WebhookEndpointObject:
    return WebhookEndpointObject(
        id=endpoint.id,
        key_id=endpoint.key_id,
        url=endpoint.url,
        created_at=int(endpoint.created_at.timestamp()),
        disabled_reason=endpoint.disabled_reason,
        secret=endpoint.secret if with_secret else None,
    )


def _stamp(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _delivery(delivery: store.Delivery) -> WebhookDeliveryObject:
    return WebhookDeliveryObject(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        task_id=delivery.task_id,
        type=delivery.event_type,
        state=delivery.state,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        next_attempt_at=_stamp(delivery.next_attempt_at),
        delivered_at=_stamp(delivery.delivered_at),
        created_at=int(delivery.created_at.timestamp()),
        payload=delivery.payload,
    )


async def _add(request: Request, key_id: str, url: str) -> WebhookEndpointObject:
    """Vet the URL as the sender will (a private address is refused unless allowed), then store it."""
    try:
        async with asyncio.timeout(5):
            await vet_url(url, webhook_policy(runtime(request).settings).fetch, param=PARAM)
    except TimeoutError as exc:
        raise InvalidRequest("url's host could not be resolved in time.", param=PARAM) from exc
    async with runtime(request).engine.begin() as conn:
        endpoint = await store.add_endpoint(conn, key_id, url.strip(), datetime.now(UTC))
    return _endpoint(endpoint, with_secret=True)


async def _owned(request: Request, endpoint_id: str, key_id: str | None) -> store.Endpoint:
    async with runtime(request).engine.connect() as conn:
        endpoint = await store.get_endpoint(conn, endpoint_id)
    if endpoint is None or (key_id is not None and endpoint.key_id != key_id):
        raise NotFound(f"No webhook endpoint found with id '{endpoint_id}'.", param="webhook_id")
    return endpoint


async def _remove(request: Request, endpoint_id: str, key_id: str | None) -> WebhookEndpointObject:
    await _owned(request, endpoint_id, key_id)
    async with runtime(request).engine.begin() as conn:
        await store.disable_endpoint(conn, endpoint_id, "deleted")
        endpoint = await store.get_endpoint(conn, endpoint_id)
    assert endpoint is not None
    return _endpoint(endpoint)


async def _list(request: Request, key_id: str) -> WebhookEndpointList:
    async with runtime(request).engine.connect() as conn:
        return WebhookEndpointList(data=[_endpoint(e) for e in await store.endpoints_of(conn, key_id)])


@router.post("/v1/webhooks", **contract(WebhookEndpointObject, (400, *KEY_ERRORS)))
async def create_webhook(body: WebhookCreate, request: Request, key: Key) -> WebhookEndpointObject:
    """A new endpoint for this key's video events; the answer's `secret` is shown only here."""
    return await _add(request, key.id, body.url)


@router.get("/v1/webhooks", **contract(WebhookEndpointList, KEY_ERRORS))
async def list_webhooks(request: Request, key: Key) -> WebhookEndpointList:
    return await _list(request, key.id)


@router.delete("/v1/webhooks/{webhook_id}", **contract(WebhookEndpointObject, (404, *KEY_ERRORS)))
async def delete_webhook(webhook_id: str, request: Request, key: Key) -> WebhookEndpointObject:
    return await _remove(request, webhook_id, key.id)


@admin_router.post("/keys/{key_id}/webhooks", **contract(WebhookEndpointObject, (400, 404)))
async def admin_create_webhook(key_id: str, body: WebhookCreate, request: Request) -> WebhookEndpointObject:
    async with runtime(request).engine.connect() as conn:
        if (await conn.execute(api_keys.select().where(api_keys.c.id == key_id))).one_or_none() is None:
            raise NotFound(f"No key found with id '{key_id}'.", param="key_id")
    return await _add(request, key_id, body.url)


@admin_router.get("/keys/{key_id}/webhooks", **contract(WebhookEndpointList, ()))
async def admin_list_webhooks(key_id: str, request: Request) -> WebhookEndpointList:
    return await _list(request, key_id)


@admin_router.delete("/webhooks/{webhook_id}", **contract(WebhookEndpointObject, (404,)))
async def admin_delete_webhook(webhook_id: str, request: Request) -> WebhookEndpointObject:
    return await _remove(request, webhook_id, None)


@admin_router.get("/webhook-deliveries", **contract(WebhookDeliveryList, ()))
async def admin_deliveries(
    request: Request, endpoint_id: str | None = None, task_id: str | None = None
) -> WebhookDeliveryList:
    """Newest first: state, attempts, last status or error, and the next try of each delivery."""
    async with runtime(request).engine.connect() as conn:
        found = await store.deliveries(conn, endpoint_id=endpoint_id, task_id=task_id)
    return WebhookDeliveryList(data=[_delivery(d) for d in found])


@admin_router.post("/webhook-deliveries/{delivery_id}/resend", **contract(WebhookDeliveryObject, (404, 409)))
async def admin_resend(delivery_id: str, request: Request) -> WebhookDeliveryObject:
    """Send the delivery again at the next sweep (same body and `webhook-id`); 409 if its endpoint is off."""
    async with runtime(request).engine.begin() as conn:
        delivery = await store.get_delivery(conn, delivery_id)
        if delivery is None:
            raise NotFound(f"No webhook delivery found with id '{delivery_id}'.", param="delivery_id")
        if not await store.resend(conn, delivery, datetime.now(UTC)):
            raise Conflict("The delivery's endpoint is disabled or deleted; add a new endpoint instead.")
        again = await store.get_delivery(conn, delivery_id)
    assert again is not None
    return _delivery(again)
