"""`/admin/...`: the operator's API. `create_app` mounts it only when `REELGATE_ADMIN_TOKEN` is set.

Auth is `Authorization: Bearer <admin token>`, compared in constant time: a missing or wrong token is a
401 `invalid_admin_token`, a client's API key a 403 `permission_denied`. Errors use the
OpenAI envelope like the rest of the API. Amounts, in requests and responses, are decimal strings of
credits (`"2.5"`); see `admin/schemas.py` for every shape. The work is `LocalAdmin`'s, which the CLI
shares.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelgate.admin.local import LocalAdmin
from reelgate.admin.schemas import (
    BalanceChange,
    CreatedKey,
    KeyCreate,
    KeyObject,
    KeyUpdate,
    LedgerEntryObject,
    LedgerPageParams,
    ObjectList,
    PageParams,
    TaskSummary,
    UsageQuery,
    UsageReport,
)
from reelgate.api.auth import bearer_secret
from reelgate.api.body import check_parsed_body
from reelgate.api.deps import runtime
from reelgate.api.openapi import contract, errors
from reelgate.billing.keys import authenticate
from reelgate.errors import AuthenticationError, PermissionDenied
from reelgate.webhooks.sender import send_policy

#: Declares the admin token in OpenAPI; `require_admin` reads and checks the header itself.
ADMIN_TOKEN = HTTPBearer(
    scheme_name="AdminToken", description="`Authorization: Bearer <REELGATE_ADMIN_TOKEN>`.", auto_error=False
)


async def require_admin(
    request: Request, _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(ADMIN_TOKEN)]
) -> None:
    given = bearer_secret(request.headers.get("authorization"))
    if not given:
        raise AuthenticationError(
            "The admin API needs the admin token: send `Authorization: Bearer <REELGATE_ADMIN_TOKEN>`.",
            code="invalid_admin_token",
        )
    expected = runtime(request).settings.admin_token.get_secret_value()
    if secrets.compare_digest(given.encode(), expected.encode()):
        return
    if await _is_api_key(request, given):
        raise PermissionDenied("API keys cannot use the admin API; send the admin token instead.")
    raise AuthenticationError("Incorrect admin token provided.", code="invalid_admin_token")


async def _is_api_key(request: Request, secret: str) -> bool:
    async with runtime(request).engine.connect() as conn:
        try:
            await authenticate(conn, secret)
        except AuthenticationError:
            return False
    return True


def _admin(request: Request) -> LocalAdmin:
    rt = runtime(request)
    return LocalAdmin(rt.engine, send_policy(rt.settings).fetch)


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(check_parsed_body)],
    responses=errors(401, 403, 503),
)
Admin = Annotated[LocalAdmin, Depends(_admin)]
Page = Annotated[PageParams, Query()]


@router.post("/keys", **contract(CreatedKey, (400,)))
async def create_key(body: KeyCreate, admin: Admin) -> CreatedKey:
    """A new key; the response's `secret` is the only time the key itself is shown."""
    return await admin.create_key(body)


@router.get("/keys", **contract(ObjectList[KeyObject], (400,)))
async def list_keys(admin: Admin, page: Page, include_deleted: bool = False) -> ObjectList[KeyObject]:
    return await admin.list_keys(page, include_deleted)


@router.get("/keys/{key_id}", **contract(KeyObject, (404,)))
async def get_key(key_id: str, admin: Admin) -> KeyObject:
    return await admin.get_key(key_id)


@router.patch("/keys/{key_id}", **contract(KeyObject, (400, 404, 409)))
async def update_key(key_id: str, body: KeyUpdate, admin: Admin) -> KeyObject:
    """Change name, expiry, allowed models or limits; fields left out stay, null clears."""
    return await admin.update_key(key_id, body)


@router.post("/keys/{key_id}/disable", **contract(KeyObject, (404, 409)))
async def disable_key(key_id: str, admin: Admin) -> KeyObject:
    return await admin.set_disabled(key_id, True)


@router.post("/keys/{key_id}/enable", **contract(KeyObject, (404, 409)))
async def enable_key(key_id: str, admin: Admin) -> KeyObject:
    return await admin.set_disabled(key_id, False)


@router.delete("/keys/{key_id}", **contract(KeyObject, (404,)))
async def delete_key(key_id: str, admin: Admin) -> KeyObject:
    """Soft delete: the key never authenticates again; its tasks and ledger stay readable."""
    return await admin.delete_key(key_id)


@router.post("/keys/{key_id}/balance", **contract(LedgerEntryObject, (400, 404, 409)))
async def change_balance(key_id: str, body: BalanceChange, admin: Admin) -> LedgerEntryObject:
    """Top up (`amount > 0`) or adjust (`amount < 0`) with a reason: one ledger entry, never below zero."""
    return await admin.change_balance(key_id, body)


@router.get("/keys/{key_id}/tasks", **contract(ObjectList[TaskSummary], (400, 404)))
async def key_tasks(key_id: str, admin: Admin, page: Page) -> ObjectList[TaskSummary]:
    return await admin.key_tasks(key_id, page)


@router.get("/keys/{key_id}/ledger", **contract(ObjectList[LedgerEntryObject], (400, 404)))
async def key_ledger(
    key_id: str, admin: Admin, page: Annotated[LedgerPageParams, Query()]
) -> ObjectList[LedgerEntryObject]:
    return await admin.key_ledger(key_id, page)


@router.get("/usage", **contract(UsageReport, (400,)))
async def usage(admin: Admin, query: Annotated[UsageQuery, Query()]) -> UsageReport:
    """Tasks by status and credits charged/refunded, grouped by `key`, `model` or `day` (UTC)."""
    return await admin.usage(query)
