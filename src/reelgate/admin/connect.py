"""Open the admin port the CLI was pointed at: the database (default) or a running server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from reelgate.admin.base import AdminPort
from reelgate.admin.local import LocalAdmin
from reelgate.admin.remote import RemoteAdmin
from reelgate.errors import AuthenticationError
from reelgate.settings import Settings


@asynccontextmanager
async def open_admin(
    settings: Settings, server: str | None = None, token: str | None = None
) -> AsyncIterator[AdminPort]:
    """`LocalAdmin` on the migrated database of `settings`, or `RemoteAdmin` on `server` with `token`.

    Example: `async with open_admin(Settings(), "http://127.0.0.1:8000", token) as admin: ...`
    """
    if server:
        async with _remote(server, token) as remote:
            yield remote
        return
    from reelgate.store.db import create_engine, migrate

    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        from reelgate.webhooks.sender import send_policy

        yield LocalAdmin(engine, send_policy(settings).fetch)
    finally:
        await engine.dispose()


@asynccontextmanager
async def _remote(server: str, token: str | None) -> AsyncIterator[RemoteAdmin]:
    if not token:
        raise AuthenticationError("--server needs the admin token: pass --admin-token or set REELGATE_ADMIN_TOKEN.")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.rstrip("/"), headers=headers, timeout=30) as client:
        yield RemoteAdmin(client)
