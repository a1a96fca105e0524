"""`LocalAdmin`: the admin port on the database itself. The `/admin` router and the CLI both use it."""

from __future__ import annotations

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
)
from reelgate.billing import keys, ledger
from reelgate.billing.usage import UsageFilter, usage
from reelgate.money import parse_credits
from reelgate.store.paging import PageRequest
from reelgate.tasks import repository


def page_request(params: PageParams, default_order: str) -> PageRequest:
    return PageRequest(params.limit, params.after, (params.order or default_order) == "desc")


class LocalAdmin:
    """Each call is one transaction; a change to a key first takes the key's row lock."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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
