"""`RemoteAdmin`: the admin port over HTTP, against a running server's `/admin` API.

Errors come back as the server sent them: the OpenAI envelope becomes the matching `ReelgateError`,
and a server that cannot be reached is a `ServiceUnavailable`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from reelgate.admin.schemas import (
    BalanceChange,
    CreatedKey,
    KeyCreate,
    KeyObject,
    KeyUpdate,
    LedgerEntryObject,
    ObjectList,
    PageParams,
    TaskSummary,
    UsageQuery,
    UsageReport,
    WebhookCreate,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
)
from reelgate.errors import (
    AuthenticationError,
    Conflict,
    Gone,
    InsufficientQuota,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ReelgateError,
    RequestTooLarge,
    ServiceUnavailable,
)

M = TypeVar("M", bound=BaseModel)

_BY_STATUS: dict[int, type[ReelgateError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: RequestTooLarge,
    429: InsufficientQuota,
}


class RemoteAdmin:
    """`client` carries the server's base URL and the admin token (see `connect.open_admin`)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def create_key(self, body: KeyCreate) -> CreatedKey:
        return await self._call(CreatedKey, "POST", "/admin/keys", json=_body(body))

    async def list_keys(self, page: PageParams, include_deleted: bool = False) -> ObjectList[KeyObject]:
        params = {**_query(page), **({"include_deleted": "true"} if include_deleted else {})}
        return await self._call(ObjectList[KeyObject], "GET", "/admin/keys", params=params)

    async def get_key(self, key_id: str) -> KeyObject:
        return await self._call(KeyObject, "GET", f"/admin/keys/{key_id}")

    async def update_key(self, key_id: str, body: KeyUpdate) -> KeyObject:
        return await self._call(KeyObject, "PATCH", f"/admin/keys/{key_id}", json=_body(body))

    async def set_disabled(self, key_id: str, disabled: bool) -> KeyObject:
        action = "disable" if disabled else "enable"
        return await self._call(KeyObject, "POST", f"/admin/keys/{key_id}/{action}")

    async def delete_key(self, key_id: str) -> KeyObject:
        return await self._call(KeyObject, "DELETE", f"/admin/keys/{key_id}")

    async def change_balance(self, key_id: str, body: BalanceChange) -> LedgerEntryObject:
        return await self._call(LedgerEntryObject, "POST", f"/admin/keys/{key_id}/balance", json=_body(body))

    async def key_tasks(self, key_id: str, page: PageParams) -> ObjectList[TaskSummary]:
        return await self._call(ObjectList[TaskSummary], "GET", f"/admin/keys/{key_id}/tasks", params=_query(page))

    async def key_ledger(self, key_id: str, page: PageParams) -> ObjectList[LedgerEntryObject]:
        path = f"/admin/keys/{key_id}/ledger"
        return await self._call(ObjectList[LedgerEntryObject], "GET", path, params=_query(page))

    async def usage(self, query: UsageQuery) -> UsageReport:
        return await self._call(UsageReport, "GET", "/admin/usage", params=_query(query))

    async def add_webhook(self, key_id: str, url: str) -> WebhookEndpointObject:
        body = _body(WebhookCreate(url=url))
        return await self._call(WebhookEndpointObject, "POST", f"/admin/keys/{key_id}/webhooks", json=body)

    async def list_webhooks(self, key_id: str) -> WebhookEndpointList:
        return await self._call(WebhookEndpointList, "GET", f"/admin/keys/{key_id}/webhooks")

    async def delete_webhook(self, webhook_id: str) -> WebhookEndpointObject:
        return await self._call(WebhookEndpointObject, "DELETE", f"/admin/webhooks/{webhook_id}")

    async def webhook_deliveries(
        self, endpoint_id: str | None = None, task_id: str | None = None, limit: int = 100, after: str | None = None
    ) -> WebhookDeliveryList:
        given = (("endpoint_id", endpoint_id), ("task_id", task_id), ("limit", str(limit)), ("after", after))
        params = {name: value for name, value in given if value}
        return await self._call(WebhookDeliveryList, "GET", "/admin/webhook-deliveries", params=params)

    async def resend_delivery(self, delivery_id: str) -> WebhookDeliveryObject:
        path = f"/admin/webhook-deliveries/{delivery_id}/resend"
        return await self._call(WebhookDeliveryObject, "POST", path)

    async def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"Cannot reach the server at {self._client.base_url}: {exc}") from exc
        if response.is_error:
            raise error_from_response(response)
        return model.model_validate(response.json())


def _body(body: BaseModel) -> dict[str, Any]:
    """Only what the caller set, so that a PATCH leaves the other fields alone."""
    return body.model_dump(mode="json", exclude_unset=True)


def _query(params: BaseModel) -> dict[str, Any]:
    return {name: value for name, value in params.model_dump(mode="json").items() if value is not None}


def error_from_response(response: httpx.Response) -> ReelgateError:
    """The `ReelgateError` a server's OpenAI error envelope stands for (any reelgate API, not only /admin)."""
    try:
        error = response.json()["error"]
        message, param, code = str(error["message"]), error.get("param"), error.get("code")
    except (ValueError, KeyError, TypeError):
        message, param, code = f"The server answered {response.status_code}: {response.text[:200]}", None, None
    cls = _BY_STATUS.get(response.status_code, ReelgateError)
    return cls(message, param=param, code=code)
