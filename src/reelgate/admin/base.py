"""The admin port: every operator action, in wire shapes, whichever side of HTTP it runs on."""

from __future__ import annotations

from typing import Protocol

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


class AdminPort(Protocol):
    async def create_key(self, body: KeyCreate) -> CreatedKey: ...

    async def list_keys(self, page: PageParams, include_deleted: bool = False) -> ObjectList[KeyObject]: ...

    async def get_key(self, key_id: str) -> KeyObject: ...

    async def update_key(self, key_id: str, body: KeyUpdate) -> KeyObject: ...

    async def set_disabled(self, key_id: str, disabled: bool) -> KeyObject: ...

    async def delete_key(self, key_id: str) -> KeyObject: ...

    async def change_balance(self, key_id: str, body: BalanceChange) -> LedgerEntryObject: ...

    async def key_tasks(self, key_id: str, page: PageParams) -> ObjectList[TaskSummary]: ...

    async def key_ledger(self, key_id: str, page: PageParams) -> ObjectList[LedgerEntryObject]: ...

    async def usage(self, query: UsageQuery) -> UsageReport: ...

    async def add_webhook(self, key_id: str, url: str) -> WebhookEndpointObject: ...

    async def list_webhooks(self, key_id: str) -> WebhookEndpointList: ...

    async def delete_webhook(self, webhook_id: str) -> WebhookEndpointObject: ...

    async def webhook_deliveries(
        self, endpoint_id: str | None = None, task_id: str | None = None, limit: int = 100, after: str | None = None
    ) -> WebhookDeliveryList: ...

    async def resend_delivery(self, delivery_id: str) -> WebhookDeliveryObject: ...
