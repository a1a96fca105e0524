"""A pooled PostgreSQL connection that died while it rested is replaced before use, not handed to a request."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from reelgate.store import db

pytestmark = pytest.mark.postgres


async def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(postgres_url: str, pid: int) -> None:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_a_connection_killed_while_resting_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)  # every rest counts: no need to wait a second
    engine = db.create_engine(postgres_url, connections=1)
    try:
        killed = await _backend_pid(engine)
        await _terminate(postgres_url, killed)
        assert await _backend_pid(engine) != killed  # the ping found it dead; a fresh one served the query
    finally:
        await engine.dispose()


async def test_a_connection_taken_again_at_once_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 3600.0)
    engine = db.create_engine(postgres_url, connections=1)
    pings: list[object] = []
    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", lambda conn: pings.append(conn) or True)
    try:
        first = await _backend_pid(engine)
        assert await _backend_pid(engine) == first
        assert pings == []
    finally:
        await engine.dispose()
