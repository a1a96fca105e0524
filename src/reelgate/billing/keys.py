"""API keys. Only the SHA-256 digest of a key is stored; the key itself is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Delete, String, Update, any_, bindparam, event, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from reelgate.billing import ledger
from reelgate.errors import AuthenticationError, Conflict, NotFound
from reelgate.store.paging import Page, PageRequest, fetch_page
from reelgate.store.tables import api_keys

KEY_PREFIX = "sk-"
#: What `new_secret` makes: the prefix and 48 lower-case hex digits.
WELL_FORMED = re.compile(r"sk-[0-9a-f]{48}")

#: In a connection's `info`: it changed a key's row in the transaction now ending.
_CHANGED = "reelgate_key_changed"

#: What an operator may change on an existing key (`update_key`).
EDITABLE = frozenset({"name", "expires_at", "allowed_models", "rpm_limit", "concurrency_limit", "player_block"})


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    hint: str
    balance: int
    disabled: bool
    created_at: datetime
    expires_at: datetime | None = None
    #: Models this key may use; None means every model.
    allowed_models: tuple[str, ...] | None = None
    rpm_limit: int | None = None
    concurrency_limit: int | None = None
    deleted: bool = False
    #: Whether chat replies end with an HTML video player block; None means the server's setting.
    player_block: bool | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_hex(24)


async def create_key(
    conn: AsyncConnection,
    *,
    name: str = "",
    balance: int = 0,
    expires_at: datetime | None = None,
    allowed_models: Sequence[str] | None = None,
    rpm_limit: int | None = None,
    concurrency_limit: int | None = None,
    player_block: bool | None = None,
) -> tuple[ApiKey, str]:
    """A new key funded with `balance` micro-credits (one ledger entry); returns the key and its secret.

    `allowed_models=None` allows every model; limits of None mean the server's defaults.
    """
    secret = new_secret()
    key_id = f"key_{str(ULID()).lower()}"
    values = {
        "id": key_id,
        "name": name,
        "hint": f"{secret[:5]}…{secret[-4:]}",
        "created_at": datetime.now(UTC),
        "digest": digest(secret),
        **_column_values(
            {
                "expires_at": expires_at,
                "allowed_models": allowed_models,
                "rpm_limit": rpm_limit,
                "concurrency_limit": concurrency_limit,
                "player_block": player_block,
            }
        ),
    }
    await conn.execute(insert(api_keys).values(values))
    if balance:
        await ledger.credit(conn, key_id, balance, note="initial balance")
    return await get_key(conn, key_id), secret


async def get_key(conn: AsyncConnection, key_id: str) -> ApiKey:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).one()
    return _from_row(row)


async def find_key(conn: AsyncConnection, key_id: str) -> ApiKey:
    """The key with this id, deleted or not; NotFound if there is none."""
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).one_or_none()
    if row is None:
        raise NotFound(f"No API key found with id '{key_id}'.", param="id")
    return _from_row(row)


async def lock_key(conn: AsyncConnection, key_id: str, *, allow_deleted: bool = False) -> ApiKey:
    """The key, its row locked (PostgreSQL) or the write lock taken (SQLite) for the rest of the transaction.

    The lock comes first, by a no-op UPDATE as `TaskService.submit` takes it, so that two operators'
    changes to one key run one after the other. NotFound if there is no such key; Conflict if it was
    deleted, unless `allow_deleted`.
    """
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(balance=api_keys.c.balance))
    key = await find_key(conn, key_id)
    if key.deleted and not allow_deleted:
        raise Conflict(f"The API key '{key_id}' was deleted; it can no longer be changed.", param="id")
    return key


async def page_keys(conn: AsyncConnection, page: PageRequest, *, include_deleted: bool = False) -> Page[ApiKey]:
    query = select(api_keys)
    if not include_deleted:
        query = query.where(api_keys.c.deleted.is_(False))
    return await fetch_page(conn, query, api_keys.c.id, page, _from_row)


async def update_key(conn: AsyncConnection, key_id: str, changes: Mapping[str, Any]) -> ApiKey:
    """Set the given `EDITABLE` fields (None clears expiry, model list and limits)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    await lock_key(conn, key_id)
    if changes:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(_column_values(changes)))
    return await get_key(conn, key_id)


async def set_disabled(conn: AsyncConnection, key_id: str, disabled: bool) -> ApiKey:
    await lock_key(conn, key_id)
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(disabled=disabled))
    return await get_key(conn, key_id)


async def delete_key(conn: AsyncConnection, key_id: str) -> ApiKey:
    """Soft delete: the key stops authenticating for good; its tasks and ledger stay. Idempotent."""
    await lock_key(conn, key_id, allow_deleted=True)
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(deleted=True))
    return await get_key(conn, key_id)


async def authenticate(conn: AsyncConnection, secret: str | None) -> ApiKey:
    """The enabled key whose secret this is, or AuthenticationError."""
    wanted = digest(required(secret))
    row = (await conn.execute(select(api_keys).where(api_keys.c.digest == wanted))).one_or_none()
    return verified(required(secret), row)


def required(secret: str | None) -> str:
    """The secret, or AuthenticationError when the request sent none."""
    if not secret:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as `Authorization: Bearer sk-...`.", code=None
        )
    return secret


#: Reads the key rows with the digests bound to `digests`; built once, as it is read for every request.
BY_DIGEST = select(api_keys).where(api_keys.c.digest.in_(bindparam("digests", expanding=True)))
#: `BY_DIGEST` on PostgreSQL: the digests as one array, so that the statement's text (prepared once per
#: connection) is the same however many keys a read looks up.
BY_ANY_DIGEST = select(api_keys).where(api_keys.c.digest == any_(bindparam("digests", type_=ARRAY(String))))


def rows_by_digest(conn: Connection, digests: Collection[str]) -> dict[str, Any]:
    """The key rows with these digests (for `verified`), by digest: many requests' keys in one read
    (synchronous: `store.db.run_sync` runs it on SQLite's twin engine)."""
    reading = BY_ANY_DIGEST if conn.dialect.name == "postgresql" else BY_DIGEST
    rows = conn.execute(reading, {"digests": list(digests)})
    return {row.digest: row for row in rows}


def verified(secret: str, row: Any) -> ApiKey:
    """The key of `row` (read by the secret's digest) if it may be used, else AuthenticationError."""
    if row is None or not hmac.compare_digest(row.digest, digest(secret)):
        raise _incorrect(_redact(secret), own_shape=bool(WELL_FORMED.fullmatch(secret)))
    refused = refusal(row, datetime.now(UTC))
    if refused is not None:
        raise refused
    return _from_row(row)


def refusal(row: Any, now: datetime) -> AuthenticationError | None:
    """Why the key of `row` (its `hint`, `deleted`, `disabled` and `expires_at`) may not be used at `now`:
    the error `verified` raises, for the admission transaction to raise too, whatever a cache says."""
    if row.deleted:
        return _incorrect(f"{row.hint[:3]}***{row.hint[-4:]}", own_shape=True)
    if row.disabled:
        return AuthenticationError("This API key has been disabled.", code="api_key_disabled")
    if row.expires_at is not None and row.expires_at <= now:
        return AuthenticationError("This API key has expired.", code="api_key_expired")
    return None


def on_changes(engine: Engine, changed: Callable[[], None]) -> None:
    """Call `changed()` each time a transaction through `engine` that changed a key's row has ended.

    Statements run with `ledger.BALANCE_ONLY` (a charge, a key's lock) do not count: everything that shows or
    spends a balance reads it afresh. `changed` may be called from a worker thread.
    """

    def seen(conn: Any, statement: Any, _many: Any, _params: Any, options: Any, _result: Any) -> None:
        if (
            isinstance(statement, (Update, Delete))
            and statement.table is api_keys
            and not options.get(ledger.BALANCE_ONLY_OPTION)
        ):
            conn.info[_CHANGED] = True

    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_CHANGED, False):
            changed()

    event.listen(engine, "after_execute", seen)
    event.listen(engine, "checkin", returned)


def _incorrect(redacted: str, *, own_shape: bool) -> AuthenticationError:
    hint = _WHERE_KEYS_COME_FROM if own_shape else ""
    return AuthenticationError(f"Incorrect API key provided: {redacted}.{hint}")


#: For a key shaped like this server's own: the hint that keys belong to one server's database.
_WHERE_KEYS_COME_FROM = (
    " Keys are made by `reelgate keys create` (or the /admin API) and only work on the server whose "
    "database holds them: check that the key was created with the same data folder or --database-url "
    "that this server logged at start-up."
)


def _redact(secret: str) -> str:
    return f"{secret[:3]}***{secret[-4:]}" if len(secret) > 10 else "***"


def _column_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Domain values to column values: the model list is stored as JSON text."""
    columns = dict(values)
    if columns.get("allowed_models") is not None:
        columns["allowed_models"] = json.dumps(list(columns["allowed_models"]))
    return columns


@lru_cache(maxsize=1024)
def _from_row(row: object) -> ApiKey:
    """The key of a row (kept: the rows a server reads for its requests are a few keys' own, read again
    and again; an ApiKey is frozen, so one can serve them all)."""
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values.pop("digest")
    models = values.pop("allowed_models")
    return ApiKey(**values, allowed_models=tuple(json.loads(models)) if models is not None else None)
