"""`LocalAdmin`: the admin port on the database itself. The `/admin` router and the CLI both use it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.admin import presenters
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
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
)
from reelgate.billing import keys, ledger
from reelgate.billing.usage import UsageFilter, usage
from reelgate.errors import Conflict, NotFound
from reelgate.inputs.fetch import FetchPolicy
from reelgate.money import parse_credits
from reelgate.store.paging import PageRequest
from reelgate.tasks import repository
from reelgate.webhooks import store as webhooks
from reelgate.webhooks.sender import check_url


def page_request(params: PageParams, default_order: str) -> PageRequest:
    return PageRequest(params.limit, params.after, (params.order or default_order) == "desc")


class LocalAdmin:
    """Each call is one transaction; a change to a key first takes the key's row lock."""

    def __init__(self, engine: AsyncEngine, webhook_fetch: FetchPolicy | None = None) -> None:
        self._engine = engine
        #: The SSRF rules webhook URLs must pass (the server's `image_fetch_allow`).
        self._webhook_fetch = webhook_fetch or FetchPolicy()

    async def create_key(self, body: KeyCreate) -> CreatedKey:
        async with self._engine.begin() as conn:
            key, secret = await keys.create_key(conn, balance=parse_credits(body.balance), **body.changes())
        return presenters.created_key(key, secret)

    async def list_keys(self, page: PageParams, include_deleted: bool = False) -> ObjectList[KeyObject]:
        """Oldest first unless `order=desc`; deleted keys only with `include_deleted`."""
        async with self._engine.connect() as conn:
            found = await keys.page_keys(conn, page_request(page, "asc"), include_deleted=include_deleted)
        return presenters.object_list(found, presenters.key_object)

    async def get_key(self, key_id: str) -> KeyObject:
        async with self._engine.connect() as conn:
            return presenters.key_object(await keys.find_key(conn, key_id))

    async def update_key(self, key_id: str, body: KeyUpdate) -> KeyObject:
        async with self._engine.begin() as conn:
            return presenters.key_object(await keys.update_key(conn, key_id, body.changes()))

    async def set_disabled(self, key_id: str, disabled: bool) -> KeyObject:
        async with self._engine.begin() as conn:
            return presenters.key_object(await keys.set_disabled(conn, key_id, disabled))

    async def delete_key(self, key_id: str) -> KeyObject:
        async with self._engine.begin() as conn:
            return presenters.key_object(await keys.delete_key(conn, key_id))

    async def change_balance(self, key_id: str, body: BalanceChange) -> LedgerEntryObject:
        """One ledger entry and the balance change, in one transaction under the key's row lock."""
        async with self._engine.begin() as conn:
            await keys.lock_key(conn, key_id)
            entry = await ledger.adjust(conn, key_id, parse_credits(body.amount), body.reason)
        return presenters.entry_object(entry)

    async def key_tasks(self, key_id: str, page: PageParams) -> ObjectList[TaskSummary]:
        """Newest first unless `order=asc`."""
        async with self._engine.connect() as conn:
            await keys.find_key(conn, key_id)
            found = await repository.page_for_key(conn, key_id, page_request(page, "desc"))
        return presenters.object_list(found, presenters.task_summary)

    async def key_ledger(self, key_id: str, page: PageParams) -> ObjectList[LedgerEntryObject]:
        """Newest first unless `order=asc`."""
        async with self._engine.connect() as conn:
            await keys.find_key(conn, key_id)
            found = await ledger.page_entries(conn, key_id, page_request(page, "desc"))
        return presenters.object_list(found, presenters.entry_object)

    async def usage(self, query: UsageQuery) -> UsageReport:
        where = UsageFilter(since=query.since, until=query.until, key_id=query.key_id)
        async with self._engine.connect() as conn:
            rows = await usage(conn, [query.group_by], where)
        return presenters.usage_report(rows, query)

    async def add_webhook(self, key_id: str, url: str) -> WebhookEndpointObject:
        """A new endpoint for the key's video events; the answer's `secret` is shown only here."""
        async with self._engine.connect() as conn:
            await keys.find_key(conn, key_id)
        await check_url(url, self._webhook_fetch)
        async with self._engine.begin() as conn:
            endpoint = await webhooks.add_endpoint(conn, key_id, url.strip(), datetime.now(UTC))
        return presenters.endpoint_object(endpoint, with_secret=True)

    async def list_webhooks(self, key_id: str) -> WebhookEndpointList:
        """The key's active endpoints, oldest first, without their secrets."""
        async with self._engine.connect() as conn:
            found = await webhooks.endpoints_of(conn, key_id)
        return WebhookEndpointList(data=[presenters.endpoint_object(endpoint) for endpoint in found])

    async def delete_webhook(self, webhook_id: str, key_id: str | None = None) -> WebhookEndpointObject:
        """Stop sending to the endpoint (only the key's own, when `key_id` is given)."""
        async with self._engine.begin() as conn:
            endpoint = await webhooks.get_endpoint(conn, webhook_id)
            if endpoint is None or (key_id is not None and endpoint.key_id != key_id):
                raise NotFound(f"No webhook endpoint found with id '{webhook_id}'.", param="webhook_id")
            await webhooks.disable_endpoint(conn, webhook_id, "deleted")
            endpoint = await webhooks.get_endpoint(conn, webhook_id)
        assert endpoint is not None
        return presenters.endpoint_object(endpoint)

    async def webhook_deliveries(
        self, endpoint_id: str | None = None, task_id: str | None = None, limit: int = 100, after: str | None = None
    ) -> WebhookDeliveryList:
        """Newest first, a page of `limit` after the delivery `after`: state, attempts, last status or
        error, and the next try."""
        async with self._engine.connect() as conn:
            page = await webhooks.deliveries(conn, endpoint_id=endpoint_id, task_id=task_id, limit=limit, after=after)
        return presenters.delivery_list(page)

    async def resend_delivery(self, delivery_id: str) -> WebhookDeliveryObject:
        """Send again at the next sweep, same body and `webhook-id`; Conflict if the endpoint is off."""
        async with self._engine.begin() as conn:
            delivery = await webhooks.get_delivery(conn, delivery_id)
            if delivery is None:
                raise NotFound(f"No webhook delivery found with id '{delivery_id}'.", param="delivery_id")
            if not await webhooks.resend(conn, delivery, datetime.now(UTC)):
                raise Conflict("The delivery's endpoint is disabled or deleted; add a new endpoint instead.")
            delivery = await webhooks.get_delivery(conn, delivery_id)
        assert delivery is not None
        return presenters.delivery_object(delivery)
