"""The ledger: balance moves, each recorded as one entry, idempotent per (task, kind).

Invariant: for every key, `api_keys.balance` equals the sum of its ledger amounts. Every function here
runs inside the caller's transaction, so a debit and the task insert commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.errors import InsufficientQuota, InvalidRequest
from reelgate.money import format_credits
from reelgate.store.db import insert_rows, plain_write
from reelgate.store.paging import Page, PageRequest, fetch_page
from reelgate.store.tables import api_keys, ledger

BALANCE_ONLY_OPTION = "reelgate_balance_only"
#: The execution options of a statement that changes no more of a key's row than its balance (a charge,
#: the no-op update that takes a key's lock): rows kept by `keys.on_changes`' listeners stay kept.
BALANCE_ONLY = {BALANCE_ONLY_OPTION: True}


class EntryKind(StrEnum):
    CREDIT = "credit"  #: money added by an operator (the opening balance, a top-up)
    ADJUSTMENT = "adjustment"  #: money taken away by an operator, with the reason in `note`
    CHARGE = "charge"  #: a task accepted; one per task
    REFUND = "refund"  #: a failed task given back under the refund policy; one per task


@dataclass(frozen=True)
class Entry:
    id: int
    key_id: str
    task_id: str | None
    kind: EntryKind
    amount: int
    balance_after: int
    note: str
    created_at: datetime


async def debit(conn: AsyncConnection, key_id: str, amount: int, task_id: str) -> int:
    """Charge `amount` for `task_id`; the new balance. InsufficientQuota leaves everything unchanged.

    The balance check and the decrement are one conditional UPDATE, so concurrent requests can
    never overdraw a key.
    """
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.balance >= amount)
        .values(balance=api_keys.c.balance - amount)
        .returning(api_keys.c.balance)
        .execution_options(**BALANCE_ONLY)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        left = (await conn.execute(select(api_keys.c.balance).where(api_keys.c.id == key_id))).scalar_one()
        raise too_low(key_id, amount, left)
    await _record(conn, key_id, task_id, EntryKind.CHARGE, -amount, balance, "")
    return int(balance)


def too_low(key_id: str, amount: int, left: int) -> InsufficientQuota:
    return InsufficientQuota(
        f"Your balance is too low for this request: it costs {format_credits(amount)} credits and this key "
        f"has {format_credits(left)} left. Ask the operator to top it up "
        f"(`reelgate keys topup {key_id} AMOUNT --reason ...`) and try again."
    )


@dataclass(frozen=True)
class Charge:
    key_id: str
    task_id: str
    amount: int
    #: The key's balance once this charge (and those before it) is taken.
    balance_after: int


def charge_all(conn: Connection, charges: list[Charge]) -> None:
    """Write charges decided against the balances read under the keys' locks (each covered): the keys'
    last balances and one entry each, in two statements however many there are."""
    if not charges:
        return
    plain_write(conn, _SET_BALANCE, [{"key": key_id, "left": left} for key_id, left in last_balances(charges).items()])
    insert_rows(conn, ledger, charge_entries(charges))


def last_balances(charges: list[Charge]) -> dict[str, int]:
    """Each charged key's balance once all of `charges` are taken."""
    return {charge.key_id: charge.balance_after for charge in charges}


def charge_entries(charges: list[Charge]) -> list[dict[str, Any]]:
    """The ledger rows that record `charges`."""
    now = datetime.now(UTC)
    return [
        {
            "key_id": c.key_id,
            "task_id": c.task_id,
            "kind": EntryKind.CHARGE.value,
            "amount": -c.amount,
            "balance_after": c.balance_after,
            "note": "",
            "created_at": now,
        }
        for c in charges
    ]


# Built once: `charge_all` runs for every admission.
_SET_BALANCE = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key"))
    .values(balance=bindparam("left"))
    .execution_options(**BALANCE_ONLY)
)


async def refund(conn: AsyncConnection, key_id: str, amount: int, task_id: str) -> int:
    """Give a failed task's charge back; the unique (task, kind) entry makes a second refund impossible."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(balance=api_keys.c.balance + amount)
        .returning(api_keys.c.balance)
        .execution_options(**BALANCE_ONLY)
    )
    balance = int(result.scalar_one())
    await _record(conn, key_id, task_id, EntryKind.REFUND, amount, balance, "task failed")
    return balance


async def credit(conn: AsyncConnection, key_id: str, amount: int, note: str) -> int:
    """Add `amount` (may be negative for a correction) to a key; the new balance."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(balance=api_keys.c.balance + amount)
        .returning(api_keys.c.balance)
        .execution_options(**BALANCE_ONLY)
    )
    balance = int(result.scalar_one())
    await _record(conn, key_id, None, EntryKind.CREDIT, amount, balance, note)
    return balance


async def adjust(conn: AsyncConnection, key_id: str, amount: int, reason: str) -> Entry:
    """An operator's top-up (`amount > 0`) or adjustment (`amount < 0`): one entry noting `reason`.

    The balance never goes below zero: the check and the change are one conditional UPDATE, which
    also holds the key's row lock until the transaction ends (as `debit` does). InvalidRequest
    leaves everything unchanged. The caller has checked that the key exists.
    """
    if amount == 0:
        raise InvalidRequest("The amount must not be zero.", param="amount")
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.balance + amount >= 0)
        .values(balance=api_keys.c.balance + amount)
        .returning(api_keys.c.balance)
        .execution_options(**BALANCE_ONLY)
    )
    balance = result.scalar_one_or_none()
    if balance is None:
        raise InvalidRequest(
            f"An adjustment of {format_credits(amount)} credits would take the balance below zero.",
            param="amount",
            code="balance_below_zero",
        )
    kind = EntryKind.CREDIT if amount > 0 else EntryKind.ADJUSTMENT
    return await _record(conn, key_id, None, kind, amount, int(balance), reason)


async def entries(conn: AsyncConnection, key_id: str) -> list[Entry]:
    rows = await conn.execute(select(ledger).where(ledger.c.key_id == key_id).order_by(ledger.c.id))
    return [_entry(row) for row in rows]


async def page_entries(conn: AsyncConnection, key_id: str, page: PageRequest) -> Page[Entry]:
    """A page of the key's entries; the cursor is an entry id (an integer)."""
    if page.after is not None:
        try:
            page = PageRequest(page.limit, int(page.after), page.descending)
        except ValueError as exc:
            raise InvalidRequest("after: ledger entry ids are integers.", param="after") from exc
    return await fetch_page(conn, select(ledger).where(ledger.c.key_id == key_id), ledger.c.id, page, _entry)


async def ledger_sum(conn: AsyncConnection, key_id: str) -> int:
    total = await conn.scalar(select(func.coalesce(func.sum(ledger.c.amount), 0)).where(ledger.c.key_id == key_id))
    return int(total or 0)


async def _record(
    conn: AsyncConnection,
    key_id: str,
    task_id: str | None,
    kind: EntryKind,
    amount: int,
    balance: int,
    note: str,
) -> Entry:
    result = await conn.execute(
        insert(ledger)
        .values(
            key_id=key_id,
            task_id=task_id,
            kind=kind.value,
            amount=amount,
            balance_after=balance,
            note=note,
            created_at=datetime.now(UTC),
        )
        .returning(*ledger.c)
    )
    return _entry(result.one())


def _entry(row: Any) -> Entry:
    return Entry(**{**row._mapping, "kind": EntryKind(row.kind)})
