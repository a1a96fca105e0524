"""Webhook endpoints: a key's own (`/v1/webhooks`) and the operator's (`/admin/...`); the work is `LocalAdmin`'s.

A new endpoint's secret is in the creation answer only. Deleting an endpoint stops its deliveries.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from reelgate.admin.local import LocalAdmin
from reelgate.admin.schemas import (
    WebhookCreate,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
)
from reelgate.api.admin import Admin, require_admin
from reelgate.api.auth import current_key
from reelgate.api.body import check_parsed_body
from reelgate.api.deps import runtime
from reelgate.api.openapi import KEY_ERRORS, contract, errors
from reelgate.billing.keys import ApiKey
from reelgate.webhooks.sender import send_policy

router = APIRouter(tags=["webhooks"])
admin_router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(check_parsed_body)],
    responses=errors(401, 403, 503),
)
Key = Annotated[ApiKey, Depends(current_key)]


def _local(request: Request) -> LocalAdmin:
    rt = runtime(request)
    return LocalAdmin(rt.engine, send_policy(rt.settings).fetch)


Local = Annotated[LocalAdmin, Depends(_local)]


@router.post("/v1/webhooks", **contract(WebhookEndpointObject, (400, *KEY_ERRORS)))
async def create_webhook(body: WebhookCreate, key: Key, local: Local) -> WebhookEndpointObject:
    """A new endpoint for this key's video events; the answer's `secret` is shown only here."""
    return await local.add_webhook(key.id, body.url)


@router.get("/v1/webhooks", **contract(WebhookEndpointList, KEY_ERRORS))
async def list_webhooks(key: Key, local: Local) -> WebhookEndpointList:
    return await local.list_webhooks(key.id)


@router.delete("/v1/webhooks/{webhook_id}", **contract(WebhookEndpointObject, (404, *KEY_ERRORS)))
async def delete_webhook(webhook_id: str, key: Key, local: Local) -> WebhookEndpointObject:
    return await local.delete_webhook(webhook_id, key.id)


@admin_router.post("/keys/{key_id}/webhooks", **contract(WebhookEndpointObject, (400, 404)))
async def admin_create_webhook(key_id: str, body: WebhookCreate, admin: Admin) -> WebhookEndpointObject:
    return await admin.add_webhook(key_id, body.url)


@admin_router.get("/keys/{key_id}/webhooks", **contract(WebhookEndpointList, ()))
async def admin_list_webhooks(key_id: str, admin: Admin) -> WebhookEndpointList:
    return await admin.list_webhooks(key_id)


@admin_router.delete("/webhooks/{webhook_id}", **contract(WebhookEndpointObject, (404,)))
async def admin_delete_webhook(webhook_id: str, admin: Admin) -> WebhookEndpointObject:
    return await admin.delete_webhook(webhook_id)


@admin_router.get("/webhook-deliveries", **contract(WebhookDeliveryList, (400,)))
async def admin_deliveries(
    admin: Admin,
    endpoint_id: str | None = None,
    task_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    after: str | None = None,
) -> WebhookDeliveryList:
    """Newest first: state, attempts, last status or error, and the next try of each delivery; pages of
    `limit`, the next one `after` the previous page's `last_id`."""
    return await admin.webhook_deliveries(endpoint_id, task_id, limit, after)


@admin_router.post("/webhook-deliveries/{delivery_id}/resend", **contract(WebhookDeliveryObject, (404, 409)))
async def admin_resend(delivery_id: str, admin: Admin) -> WebhookDeliveryObject:
    """Send the delivery again at the next sweep (same body and `webhook-id`); 409 if its endpoint is off."""
    return await admin.resend_delivery(delivery_id)
