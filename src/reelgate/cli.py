"""The `reelgate` command: serve, migrate, check the books; `keys` and `usage` live in `admin/cli.py`."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from reelgate.admin.cli import DatabaseUrl, DataDir, keys_app, load_settings, usage
from reelgate.admin.webhooks_cli import webhooks_app
from reelgate.client.commands import generate, videos_app
from reelgate.settings import Settings

app = typer.Typer(help="reelgate: a self-hosted, OpenAI-compatible video generation gateway.", no_args_is_help=True)
keys_app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys")
app.command("usage")(usage)
ledger_app = typer.Typer(help="Check the books.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.command("generate")(generate)
app.add_typer(videos_app, name="videos")

T = TypeVar("T")
log = logging.getLogger("reelgate.cli")


async def _no_work(_engine: Any) -> None:
    return None


def _with_engine(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(engine)` on a migrated database, then dispose of the engine."""
    from reelgate.store.db import create_engine, migrate

    async def main() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"error: cannot use the database {settings.database_label}: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_format: Annotated[
        Literal["json", "text"] | None, typer.Option("--log-format", help="Log lines as text or JSON.")
    ] = None,
    processes: Annotated[
        int | None, typer.Option("--processes", help="Server processes sharing the port (default 1).", min=1)
    ] = None,
) -> None:
    """Start the server (migrations are applied at start)."""
    from uvicorn.config import STARTUP_FAILURE

    from reelgate import serving
    from reelgate.observability.logging import configure_logging

    given = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url}
    given |= {"log_format": log_format, "server_processes": processes}
    overrides = {name: value for name, value in given.items() if value is not None}
    settings = load_settings(**overrides)
    configure_logging(settings)
    check_port_free(settings.host, settings.port)
    check_one_gpu_load(settings)
    log.info("data folder %s, database %s", settings.data_dir.resolve(), settings.database_label)
    if settings.server_processes > 1:
        serve_processes(settings, overrides)
        return
    if not serving.serve_one(settings):
        raise typer.Exit(STARTUP_FAILURE)


def serve_processes(settings: Settings, overrides: dict[str, Any]) -> None:
    """`serve --processes N`: migrate once here (the children would all migrate at the same instant), then
    supervise the N servers; exit 1 when one of them could not start."""
    from reelgate import serving

    _with_engine(settings, _no_work)
    log.info("serving on %s:%d in %d processes", settings.host, settings.port, settings.server_processes)
    if not serving.serve_processes(settings, overrides):
        raise typer.Exit(1)


def check_port_free(host: str, port: int) -> None:
    """Exit with a `--port` hint when the port is taken, before migrations run and start-up is logged."""
    if port == 0:
        return
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind((host, port))
    except OSError as exc:
        typer.echo(
            f"error: cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (another reelgate?) "
            f"may be using it: stop it, or choose another port, e.g. `reelgate serve --port {port + 1}`.",
            err=True,
        )
        raise typer.Exit(1) from exc


def check_one_gpu_load(settings: Settings) -> None:
    """Exit before migrations run and any process starts when each of the `--processes` would load a
    local GPU model onto the same card; the message says how to serve in processes and render in a worker."""
    if settings.server_processes == 1:
        return
    from reelgate import serving

    if refusal := serving.gpu_refusal(settings):
        typer.echo(f"error: {refusal}", err=True)
        raise typer.Exit(1)


@app.command()
def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    backends: Annotated[
        list[str] | None,
        typer.Option("--backend", help="A catalog backend this worker renders (repeat; default: all)."),
    ] = None,
    log_format: Annotated[
        Literal["json", "text"] | None, typer.Option("--log-format", help="Log lines as text or JSON.")
    ] = None,
) -> None:
    """Render queued tasks without serving HTTP (e.g. on a GPU host), beside a `reelgate serve`."""
    from reelgate.observability.logging import configure_logging
    from reelgate.runtime import run_worker

    settings = load_settings(data_dir=data_dir, database_url=database_url, log_format=log_format, run_backends=backends)
    configure_logging(settings)
    asyncio.run(run_worker(settings))


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    _with_engine(settings, _no_work)
    typer.echo(f"database is up to date: {settings.database_label}")


@ledger_app.command("verify")
def ledger_verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check that every balance equals its ledger and every task was charged exactly once."""
    from reelgate.billing.audit import verify_ledger

    async def work(engine: Any) -> list[str]:
        async with engine.connect() as conn:
            return await verify_ledger(conn)

    problems = _with_engine(load_settings(data_dir=data_dir, database_url=database_url), work)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo("ledger ok")


def main() -> None:
    app()
