"""Wire shapes of the admin API (`/admin/...`) and of a key's own billing view (`/v1/dashboard/billing/...`).

Money is exact: every amount here is a decimal string of credits (`"2.5"`, `"-0.75"`), formatted by
`money.format_credits` from integer micro-credits, and requests take the same (a number is accepted
too). Times are Unix seconds in responses, ISO 8601 or Unix seconds in requests (UTC when no zone is
given). The old OpenAI billing shapes are the exception: their `*_usd` and `cost` fields are numbers,
as the clients that read them expect.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from reelgate.billing.usage import GroupBy
from reelgate.money import MICROS_PER_CREDIT, format_credits, parse_credits

ItemT = TypeVar("ItemT")

#: The largest amount one request may move: a billion credits, far inside a 64-bit column.
MAX_CREDITS = 1_000_000_000
#: An amount as a string: `"2.5"`, `"-0.75"`, `"+10"`; under a billion, at most 6 decimals.
AMOUNT = re.compile(r"[+-]?[0-9]{1,9}(\.[0-9]{1,6})?")
#: Unix seconds the API takes (pydantic reads numbers past 2e10 as milliseconds): years 1653 to 2286.
MAX_UNIX = 9_999_999_999
_UNIX = {"type": "number", "minimum": -MAX_UNIX, "maximum": MAX_UNIX}
#: Unix seconds written as a string (`"1767225600"`).
_UNIX_STRING = {"type": "string", "pattern": r"^[+-]?[0-9]{1,10}(\.[0-9]+)?$"}
_NUMERIC = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def _credits(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be an amount of credits, e.g. "2.5"')
    if isinstance(value, str) and not AMOUNT.fullmatch(value):
        raise ValueError('must be an amount of credits with at most 6 decimals, e.g. "2.5"')
    micros = parse_credits(str(value) if isinstance(value, float) else value)
    if abs(micros) > MAX_CREDITS * MICROS_PER_CREDIT:
        raise ValueError(f"must be at most {MAX_CREDITS} credits")
    return format_credits(micros)


def _seconds_only(value: object) -> object:
    """Unix seconds in range, as `_UNIX` and `_UNIX_STRING` say; ISO 8601 strings pass through."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        if not re.fullmatch(_UNIX_STRING["pattern"], value):
            raise ValueError(f"Unix seconds must be within ±{MAX_UNIX}")
        number = float(value)
    if number is not None and abs(number) > MAX_UNIX:
        raise ValueError(f"Unix seconds must be within ±{MAX_UNIX}")
    return value


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _not_negative(value: str) -> str:
    if parse_credits(value) < 0:
        raise ValueError("must not be negative")
    return value


#: Decimal credits, normalised: `"2.50"` and `2.5` both become `"2.5"`.
Credits = Annotated[
    str,
    BeforeValidator(_credits),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": f"^{AMOUNT.pattern}$"}, {"type": "number"}]}),
]
#: ISO 8601 (a date or a date and time) or Unix seconds, as a number or a string of one.
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_seconds_only),
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
                _UNIX,
                _UNIX_STRING,
            ]
        }
    ),
]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Limit = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=1_000_000)]


class KeyFields(BaseModel):
    """What an operator sets on a key. Limits: null = the server's default, 0 = no limit."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    expires_at: UtcDatetime | None = None
    #: Models the key may use; null allows every model.
    allowed_models: list[ModelName] | None = Field(None, max_length=1000)
    rpm_limit: Limit | None = None
    concurrency_limit: Limit | None = None
    #: Whether chat replies end with an HTML `<video>` player block; null = the server's setting.
    player_block: StrictBool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the request set, as `billing.keys.update_key` takes them."""
        values = self.model_dump(include=self.model_fields_set & set(KeyFields.model_fields))
        if values.get("allowed_models") is not None:
            values["allowed_models"] = tuple(values["allowed_models"])
        return values


class KeyCreate(KeyFields):
    #: Opening balance in credits.
    balance: Annotated[Credits, AfterValidator(_not_negative)] = "0"


class KeyUpdate(KeyFields):
    """PATCH: only the fields present change."""


class BalanceChange(BaseModel):
    """A top-up (`amount > 0`) or an adjustment (`amount < 0`), always with a reason."""

    model_config = ConfigDict(extra="forbid")

    amount: Credits
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class PageParams(BaseModel):
    """`limit`, `after` (the last id seen) and `order`; each list has its own default order."""

    limit: int = Field(20, ge=1, le=100)
    after: str | None = Field(None, max_length=100)
    order: Literal["asc", "desc"] | None = None


class LedgerPageParams(PageParams):
    #: Ledger entry ids are integers.
    after: str | None = Field(None, pattern=r"^[0-9]{1,18}$")


class UsageQuery(BaseModel):
    group_by: GroupBy = GroupBy.KEY
    since: UtcDatetime | None = None
    #: Exclusive.
    until: UtcDatetime | None = None
    key_id: str | None = Field(None, max_length=40)


class KeyObject(BaseModel):
    """An API key as the admin API shows it: only a hint of the secret, the balance in credits."""

    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    hint: str
    balance: str
    disabled: bool
    deleted: bool
    created_at: int
    expires_at: int | None
    allowed_models: list[str] | None
    rpm_limit: int | None
    concurrency_limit: int | None
    player_block: bool | None = None


class CreatedKey(KeyObject):
    #: The key itself, shown this once; only its SHA-256 digest is stored.
    secret: str


class LedgerEntryObject(BaseModel):
    """One balance change; `amount` is signed (charges are negative) and `balance_after` follows it."""

    id: int
    object: Literal["ledger_entry"] = "ledger_entry"
    key_id: str
    task_id: str | None
    kind: str
    amount: str
    balance_after: str
    note: str
    created_at: int


class TaskError(BaseModel):
    code: str
    message: str


class TaskSummary(BaseModel):
    id: str
    object: Literal["task"] = "task"
    model: str
    status: str
    progress: int
    price: str
    prompt: str
    created_at: int
    completed_at: int | None
    error: TaskError | None


class ObjectList(BaseModel, Generic[ItemT]):
    """OpenAI's list envelope; pass `last_id` as `after` for the next page while `has_more`."""

    object: Literal["list"] = "list"
    data: list[ItemT]
    has_more: bool
    first_id: str | int | None
    last_id: str | int | None


class UsageItem(BaseModel):
    #: The key id, model name or `YYYY-MM-DD` day this row counts (see the report's `group_by`).
    group: str
    #: Tasks created in the period, by status.
    tasks: dict[str, int]
    total_tasks: int
    charged: str
    refunded: str
    #: charged - refunded
    net: str
    #: Chat clients' background requests (titles, tags, ...) answered for free: never tasks.
    background_requests: int = 0


class UsageReport(BaseModel):
    object: Literal["usage_report"] = "usage_report"
    group_by: GroupBy
    since: int | None
    until: int | None
    data: list[UsageItem]


class BillingBalance(BaseModel):
    """`GET /v1/dashboard/billing/balance`: the calling key's own balance in credits."""

    object: Literal["billing_balance"] = "billing_balance"
    key_id: str
    name: str
    balance: str
    #: Charges minus refunds over the key's life.
    total_used: str
    expires_at: int | None


class BillingSubscription(BaseModel):
    """OpenAI's old subscription shape; one credit is reported as one "USD"."""

    object: Literal["billing_subscription"] = "billing_subscription"
    has_payment_method: bool = True
    soft_limit_usd: float
    hard_limit_usd: float
    system_hard_limit_usd: float
    access_until: int


class LineItem(BaseModel):
    name: str
    #: Hundredths of a credit (OpenAI's cents).
    cost: float


class DailyCost(BaseModel):
    timestamp: float
    line_items: list[LineItem]


class BillingUsage(BaseModel):
    object: Literal["list"] = "list"
    #: Hundredths of a credit (OpenAI's cents), charges minus refunds in the period.
    total_usage: float
    daily_costs: list[DailyCost]


class CreditGrants(BaseModel):
    """OpenAI's old credit summary, in credits: granted = used + available."""

    object: Literal["credit_summary"] = "credit_summary"
    total_granted: float
    total_used: float
    total_available: float


class WebhookCreate(BaseModel):
    """`POST /v1/webhooks` (and the admin API's per key): where `video.completed` / `video.failed` go."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)


class WebhookEndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    key_id: str
    url: str
    created_at: int
    #: Why reelgate stopped sending (a 410, retries exhausted); null while active.
    disabled_reason: str | None = None
    #: `whsec_...`, given once, when the endpoint is created; verify deliveries with it.
    secret: str | None = None


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointObject]


class WebhookDeliveryObject(BaseModel):
    id: str  #: the `webhook-id` header, the same on every attempt
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    task_id: str
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: int | None
    delivered_at: int | None
    created_at: int
    payload: str  #: the exact body signed and sent


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryObject]
    first_id: str | None = None
    last_id: str | None = None  #: pass as `after` for the next (older) page
    has_more: bool = False
