"""A key's own billing view, in the shapes old OpenAI clients read (Cherry Studio, NextChat, one-api).

Authenticated with the key itself, under `/v1/dashboard/billing/` and, as one-api serves them, under
`/dashboard/billing/` too:

- `GET .../balance`: reelgate's own view, `{"object": "billing_balance", "balance": "9", ...}`, amounts
  as decimal strings of credits.
- `GET .../subscription`: OpenAI's old shape with one credit reported as one "USD".
  `hard_limit_usd` is balance + all that was ever spent (charges less refunds), as one-api style
  gateways report it, so a client showing "used / limit" or computing limit - used sees the balance.
- `GET .../usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD`: spending in the period (end date
  exclusive, both optional, UTC days): `total_usage` and each line item's `cost` are hundredths of a
  credit, as OpenAI's are cents; `daily_costs` has one entry per day with spending, a line per model.
- `GET .../credit_grants`: OpenAI's old summary in credits: granted = used + available (= balance).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from pydantic import BeforeValidator

from reelgate.admin.presenters import unix
from reelgate.admin.schemas import BillingBalance, BillingSubscription, BillingUsage, CreditGrants, DailyCost, LineItem
from reelgate.api.auth import fresh_key
from reelgate.api.deps import runtime
from reelgate.api.openapi import KEY_ERRORS, contract
from reelgate.billing.keys import ApiKey
from reelgate.billing.usage import GroupBy, UsageFilter, UsageRow, net_spent, usage
from reelgate.errors import InvalidRequest
from reelgate.money import MICROS_PER_CREDIT, format_credits

router = APIRouter(tags=["billing"])
Key = Annotated[ApiKey, Depends(fresh_key)]  # the balance as it is now, not as a kept row had it
F = TypeVar("F", bound=Callable[..., Any])
PREFIXES = ("/v1/dashboard/billing", "/dashboard/billing")


def _iso_day(value: object) -> object:
    # pydantic would also read a number as a Unix time; the contract says YYYY-MM-DD.
    if isinstance(value, str) and not (len(value) == 10 and value[4] == value[7] == "-"):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


def _get(path: str, statuses: tuple[int, ...] = KEY_ERRORS) -> Callable[[F], F]:
    def register(endpoint: F) -> F:
        for n, prefix in enumerate(PREFIXES):
            router.add_api_route(
                prefix + path, endpoint, methods=["GET"], include_in_schema=n == 0, **contract(None, statuses)
            )
        return endpoint

    return register


def _credits(micros: int) -> float:
    return micros / MICROS_PER_CREDIT


def _hundredths(micros: int) -> float:
    return micros / (MICROS_PER_CREDIT // 100)


async def _spent(request: Request, key: ApiKey) -> int:
    async with runtime(request).engine.connect() as conn:
        return await net_spent(conn, key.id)


@_get("/balance")
async def balance(request: Request, key: Key) -> BillingBalance:
    return BillingBalance(
        key_id=key.id,
        name=key.name,
        balance=format_credits(key.balance),
        total_used=format_credits(await _spent(request, key)),
        expires_at=unix(key.expires_at),
    )


@_get("/subscription")
async def subscription(request: Request, key: Key) -> BillingSubscription:
    limit = _credits(key.balance + await _spent(request, key))
    return BillingSubscription(
        soft_limit_usd=limit,
        hard_limit_usd=limit,
        system_hard_limit_usd=limit,
        access_until=unix(key.expires_at) or 0,
    )


@_get("/credit_grants")
async def credit_grants(request: Request, key: Key) -> CreditGrants:
    spent = await _spent(request, key)
    return CreditGrants(
        total_granted=_credits(key.balance + spent), total_used=_credits(spent), total_available=_credits(key.balance)
    )


@_get("/usage", (400, *KEY_ERRORS))
async def billing_usage(
    request: Request, key: Key, start_date: Day | None = None, end_date: Day | None = None
) -> BillingUsage:
    if start_date and end_date and end_date < start_date:
        raise InvalidRequest("end_date must not be before start_date.", param="end_date")
    where = UsageFilter(since=_midnight(start_date), until=_midnight(end_date), key_id=key.id)
    async with runtime(request).engine.connect() as conn:
        rows = await usage(conn, [GroupBy.DAY, GroupBy.MODEL], where)
    return BillingUsage(total_usage=_hundredths(sum(row.net for row in rows)), daily_costs=_daily(rows))


def _midnight(day: date | None) -> datetime | None:
    return _day_start(day) if day else None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _daily(rows: list[UsageRow]) -> list[DailyCost]:
    """(day, model) rows -> one entry per day with a line per model that cost something."""
    days: dict[str, list[LineItem]] = {}
    for row in rows:
        if row.charged or row.refunded:
            day, model = row.group
            days.setdefault(day, []).append(LineItem(name=model, cost=_hundredths(row.net)))
    return [
        DailyCost(timestamp=_day_start(date.fromisoformat(day)).timestamp(), line_items=items)
        for day, items in days.items()
    ]
