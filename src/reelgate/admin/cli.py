"""`reelgate keys ...` and `reelgate usage`: the admin API from the command line.

By default each command works on the database (`--data-dir`, `--database-url`, as `serve` finds it);
with `--server URL` it calls a running server's `/admin` API instead, with the token from
`--admin-token` or `REELGATE_ADMIN_TOKEN`. Both go through one `AdminPort`, so they print the same.
Amounts are credits (`2.5`); `keys create` prints the new key alone on stdout, for scripts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from reelgate.admin.base import AdminPort
from reelgate.admin.schemas import (
    BalanceChange,
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
from reelgate.billing.usage import GroupBy
from reelgate.errors import ReelgateError
from reelgate.settings import Settings, default_data_dir

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

keys_app = typer.Typer(help="Create, change and inspect API keys and their balances.", no_args_is_help=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"The data folder holding the database (reelgate.db) and media. Default: $REELGATE_DATA_DIR, else "
        f"{default_data_dir()}.",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL of the database (default: the SQLite file in the data folder)."
    ),
]
Server = Annotated[
    str | None, typer.Option("--server", help="A running server's base URL; default: the database directly.")
]
AdminToken = Annotated[
    str | None, typer.Option("--admin-token", envvar="REELGATE_ADMIN_TOKEN", help="Admin token for --server.")
]
KeyId = Annotated[str, typer.Argument(help="The key's id, key_...")]
Limit = Annotated[int, typer.Option(min=1, max=100, help="Entries per page.")]
After = Annotated[str | None, typer.Option(help="Start after this id (the `more:` hint of the last page).")]
Order = Annotated[Literal["asc", "desc"] | None, typer.Option(help="asc (oldest first) or desc.")]
Player = Annotated[
    Literal["on", "off", "default"] | None,
    typer.Option(help="End chat replies with an HTML <video> player block: on, off, or default (the server's)."),
]
PLAYER = {"on": True, "off": False, "default": None}


def load_settings(**given: Any) -> Settings:
    """The settings, with the options a command was given (None: not given). A bad value, on the command
    line or in the environment, is one line naming its variable and exit status 2, not a traceback."""
    try:
        return Settings(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {_bad_setting(error)}", err=True)
        raise typer.Exit(2) from None


def _bad_setting(error: Any) -> str:
    """`REELGATE_SERVER_PROCESSES='0': Input should be greater than or equal to 1`."""
    if not error["loc"]:
        return str(error["msg"])
    return f"REELGATE_{str(error['loc'][0]).upper()}={error['input']!r}: {error['msg']}"


@dataclass(frozen=True)
class Target:
    """Where a command runs: the database of `data_dir`/`database_url`, or `server`."""

    data_dir: Path | None = None
    database_url: str | None = None
    server: str | None = None
    admin_token: str | None = None

    def settings(self) -> Settings:
        return load_settings(data_dir=self.data_dir, database_url=self.database_url)

    def where(self) -> str:
        """` (database: ...)` for errors of a command that opened the database; empty with --server."""
        return "" if self.server else f" (database: {self.settings().database_label})"


def run(target: Target, work: Callable[[AdminPort], Awaitable[T]]) -> T:
    """`work(admin)` on the target; a refusal (unknown key, bad amount, ...) is printed, exit code 1."""
    from reelgate.admin.connect import open_admin

    async def main() -> T:
        async with open_admin(target.settings(), target.server, target.admin_token) as admin:
            return await work(admin)

    try:
        return asyncio.run(main())
    except ReelgateError as exc:
        typer.echo(f"error: {exc.message}{target.where()}", err=True)
        raise typer.Exit(1) from exc
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"error: cannot use the database {target.settings().database_label}: {exc}", err=True)
        raise typer.Exit(1) from exc


def parse(model: type[M], values: dict[str, Any]) -> M:
    """A request model from command-line values; invalid values exit with code 2, as click's own do."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        typer.echo(f"error: {where}: {first['msg']}" if where else f"error: {first['msg']}", err=True)
        raise typer.Exit(2) from exc


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _models(value: str) -> list[str] | None:
    """`a,b` -> ["a", "b"]; `all` -> None (every model)."""
    return None if value == "all" else [name.strip() for name in value.split(",") if name.strip()]


def _nullable(value: str, null_word: str) -> str | None:
    return None if value == null_word else value


def _when(unix: int | None) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S") if unix is not None else "-"


KEY_HEADER = f"{'id':30}  {'hint':10}  {'balance':>12}  {'state':8}  name"
ENTRY_HEADER = f"{'entry':>6}  {'time (UTC)':19}  {'kind':10}  {'amount':>12}  {'balance':>12}  task  note"
TASK_HEADER = f"{'task':31}  {'time (UTC)':19}  {'status':11}  {'price':>8}  model  prompt"


def key_line(key: KeyObject) -> str:
    expired = key.expires_at is not None and key.expires_at <= datetime.now(UTC).timestamp()
    state = "deleted" if key.deleted else "disabled" if key.disabled else "expired" if expired else "active"
    return f"{key.id}  {key.hint}  {key.balance:>12}  {state:8}  {key.name}"


def entry_line(entry: LedgerEntryObject) -> str:
    money = f"{entry.amount:>12}  {entry.balance_after:>12}"
    return f"{entry.id:>6}  {_when(entry.created_at)}  {entry.kind:10}  {money}  {entry.task_id or '-'}  {entry.note}"


def task_line(task: TaskSummary) -> str:
    return f"{task.id}  {_when(task.created_at)}  {task.status:11}  {task.price:>8}  {task.model}  {task.prompt[:40]}"


def print_page(page: ObjectList[Any], line: Callable[[Any], str], header: str) -> None:
    """The items, one line each; the column header goes to stderr, so that stdout stays one item a line."""
    if page.data:
        typer.echo(header, err=True)
    for item in page.data:
        typer.echo(line(item))
    if page.has_more:
        typer.echo(f"more: --after {page.last_id}", err=True)


def print_usage(report: UsageReport) -> None:
    money = f"{'charged':>12} {'refunded':>12} {'background':>10}"
    typer.echo(f"{report.group_by.value:<32} {'tasks':>6} {'done':>6} {'failed':>6} {money}")
    for row in report.data:
        done, failed = row.tasks.get("completed", 0), row.tasks.get("failed", 0)
        money = f"{row.charged:>12} {row.refunded:>12} {row.background_requests:>10}"
        typer.echo(f"{row.group:<32} {row.total_tasks:>6} {done:>6} {failed:>6} {money}")


@keys_app.command("create")
def keys_create(
    balance: Annotated[
        str | None,
        typer.Option(help="Starting balance in credits, e.g. 10 or 2.5 (a key without credits can't make videos)."),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 (UTC unless a zone is given).")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models the key may use (default: all).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute (default: the server's; 0: none).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Tasks in flight at once (default: the server's).")] = None,
    player: Player = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Create a key and print it (shown only this once). It works on the server that uses the same database."""
    values = _given(expires_at=expires, rpm_limit=rpm, concurrency_limit=concurrency)
    if models is not None:
        values["allowed_models"] = _models(models)
    if player is not None:
        values["player_block"] = PLAYER[player]
    body = parse(KeyCreate, {"balance": balance or "0", "name": name, **values})
    target = Target(data_dir, database_url, server, admin_token)
    key = run(target, lambda admin: admin.create_key(body))
    typer.echo(key.secret)
    typer.echo(f"id {key.id}  name {key.name or '-'}  balance {key.balance}{target.where()}", err=True)
    if balance is None:
        typer.echo(
            f"warning: the key has no credits, so every video request gets 429 insufficient_quota. "
            f"Top it up: `reelgate keys topup {key.id} 10 --reason start` (or pass --balance next time).",
            err=True,
        )


@keys_app.command("list")
def keys_list(
    limit: Limit = 100,
    after: After = None,
    order: Order = None,
    include_deleted: Annotated[bool, typer.Option("--all", help="Deleted keys too.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """List keys (their hints, never the keys themselves), oldest first."""
    page = parse(PageParams, _given(limit=limit, after=after, order=order))
    target = Target(data_dir, database_url, server, admin_token)
    print_page(run(target, lambda admin: admin.list_keys(page, include_deleted)), key_line, KEY_HEADER)


@keys_app.command("show")
def keys_show(
    key_id: KeyId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Print one key as JSON."""
    key = run(Target(data_dir, database_url, server, admin_token), lambda admin: admin.get_key(key_id))
    typer.echo(key.model_dump_json(indent=2))


@keys_app.command("update")
def keys_update(
    key_id: KeyId,
    name: Annotated[str | None, typer.Option(help="A new label.")] = None,
    expires: Annotated[str | None, typer.Option(help="New expiry (ISO 8601), or `never`.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models, or `all`.")] = None,
    rpm: Annotated[str | None, typer.Option(help="Requests per minute, or `default`.")] = None,
    concurrency: Annotated[str | None, typer.Option(help="Tasks in flight at once, or `default`.")] = None,
    player: Player = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Change a key's name, expiry, models, limits or player block; what is not given stays."""
    values: dict[str, Any] = _given(name=name)
    for field, value, null_word in (
        ("expires_at", expires, "never"),
        ("rpm_limit", rpm, "default"),
        ("concurrency_limit", concurrency, "default"),
    ):
        if value is not None:
            values[field] = _nullable(value, null_word)
    if models is not None:
        values["allowed_models"] = _models(models)
    if player is not None:
        values["player_block"] = PLAYER[player]
    body = parse(KeyUpdate, values)
    typer.echo(key_line(run(Target(data_dir, database_url, server, admin_token), lambda a: a.update_key(key_id, body))))


@keys_app.command("disable")
def keys_disable(
    key_id: KeyId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Stop a key from authenticating until it is enabled again."""
    key = run(Target(data_dir, database_url, server, admin_token), lambda admin: admin.set_disabled(key_id, True))
    typer.echo(key_line(key))


@keys_app.command("enable")
def keys_enable(
    key_id: KeyId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Let a disabled key authenticate again."""
    key = run(Target(data_dir, database_url, server, admin_token), lambda admin: admin.set_disabled(key_id, False))
    typer.echo(key_line(key))


@keys_app.command("delete")
def keys_delete(
    key_id: KeyId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Delete a key for good; its tasks and ledger stay."""
    key = run(Target(data_dir, database_url, server, admin_token), lambda admin: admin.delete_key(key_id))
    typer.echo(key_line(key))


@keys_app.command("topup", context_settings={"ignore_unknown_options": True})
def keys_topup(
    key_id: KeyId,
    amount: Annotated[str, typer.Argument(help="Credits to add; negative (e.g. -2) to take away.")],
    reason: Annotated[str, typer.Option(help="Why: kept in the ledger entry.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Top up or adjust a balance: one ledger entry with the reason; never below zero."""
    body = parse(BalanceChange, {"amount": amount, "reason": reason})
    entry = run(Target(data_dir, database_url, server, admin_token), lambda a: a.change_balance(key_id, body))
    typer.echo(f"{entry.kind} {entry.amount}: balance {entry.balance_after} (ledger entry {entry.id})")


@keys_app.command("ledger")
def keys_ledger(
    key_id: KeyId,
    limit: Limit = 20,
    after: After = None,
    order: Order = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """A key's ledger entries, newest first: id, time, kind, amount, balance after, task, note."""
    page = parse(PageParams, _given(limit=limit, after=after, order=order))
    target = Target(data_dir, database_url, server, admin_token)
    print_page(run(target, lambda admin: admin.key_ledger(key_id, page)), entry_line, ENTRY_HEADER)


@keys_app.command("tasks")
def keys_tasks(
    key_id: KeyId,
    limit: Limit = 20,
    after: After = None,
    order: Order = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """A key's tasks, newest first: id, time, status, price, model, prompt."""
    page = parse(PageParams, _given(limit=limit, after=after, order=order))
    target = Target(data_dir, database_url, server, admin_token)
    print_page(run(target, lambda admin: admin.key_tasks(key_id, page)), task_line, TASK_HEADER)


def usage(
    by: Annotated[GroupBy, typer.Option("--by", help="Group by key, model or (UTC) day.")] = GroupBy.KEY,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, e.g. 2026-11-01).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (exclusive).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this key's usage.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Tasks and credits charged and refunded, by key, model or day."""
    query = parse(UsageQuery, {"group_by": by, **_given(since=since, until=until, key_id=key)})
    print_usage(run(Target(data_dir, database_url, server, admin_token), lambda admin: admin.usage(query)))
