"""Key rows kept between requests (`Runtime.key_rows`): a key changed through another engine (the CLI,
another process) while this server keeps its row is refused at once by anything that charges, and a
key's balance is always shown as it is now. Made-up keys are never kept.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing import ledger
from reelgate.store.db import create_engine
from reelgate.store.recent import Recent
from reelgate.store.tables import api_keys, tasks
from tests.conftest import assert_openai_error, make_settings

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CHAT = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "一只猫"}]}
#: What another process does to a key, and what a request with it then hears.
ELSEWHERE = {
    "disabled": ({"disabled": True}, "api_key_disabled"),
    "deleted": ({"deleted": True}, "invalid_api_key"),
    "expired": ({"expires_at": datetime.now(UTC) - timedelta(minutes=1)}, "api_key_expired"),
}


@pytest.fixture
async def client(tmp_path: Any, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app (on SQLite, then PostgreSQL) whose backend holds every task it gets."""
    from reelgate.app import create_app

    settings = make_settings(tmp_path, admin_token=TOKEN, database_url=database_url)
    app = create_app(settings, {"procedural": GatedBackend(FailingBackend(), name="procedural")})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def elsewhere(client: httpx.AsyncClient) -> AsyncIterator[AsyncEngine]:
    """An engine of its own on the server's database, as the CLI or another process has."""
    engine = create_engine(str(_runtime(client).engine.url))
    yield engine
    await engine.dispose()


def _runtime(client: httpx.AsyncClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]


async def _kept_key(client: httpx.AsyncClient, balance: str = "100") -> tuple[str, dict[str, str]]:
    """A new key (its id and headers), used once so that the server keeps its row."""
    created = (await client.post("/admin/keys", json={"balance": balance}, headers=ADMIN)).json()
    own = {"Authorization": created["secret"]}
    assert (await client.get("/v1/models", headers=own)).status_code == 200
    return created["id"], own


async def _books(engine: AsyncEngine) -> tuple[int, list[int]]:
    async with engine.connect() as conn:
        n_tasks = await conn.scalar(select(func.count()).select_from(tasks))
        balances = list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())
    return int(n_tasks or 0), balances


@pytest.mark.parametrize("change", ELSEWHERE)
@pytest.mark.parametrize("idempotency", [False, True], ids=["grouped", "one-by-one"])
async def test_a_key_changed_elsewhere_is_never_charged(
    client: httpx.AsyncClient, elsewhere: AsyncEngine, change: str, idempotency: bool
) -> None:
    key_id, own = await _kept_key(client)
    values, code = ELSEWHERE[change]
    async with elsewhere.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
    before = await _books(elsewhere)
    headers = {**own, "Idempotency-Key": "one"} if idempotency else own
    async with asyncio.timeout(30):  # an admitted request would wait for its video, which never comes
        refused = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert_openai_error(refused, 401, code)
    assert await _books(elsewhere) == before


async def test_a_change_through_this_server_counts_at_once(client: httpx.AsyncClient) -> None:
    key_id, own = await _kept_key(client)
    await client.patch(f"/admin/keys/{key_id}", json={"allowed_models": ["sora-2-hd-10s-chat"]}, headers=ADMIN)
    assert_openai_error(await client.get("/v1/models/sora-2-hd-15s-chat", headers=own), 404, "model_not_found")
    await client.post(f"/admin/keys/{key_id}/disable", headers=ADMIN)
    assert_openai_error(await client.get("/v1/models", headers=own), 401, "api_key_disabled")


async def test_a_kept_key_shows_its_balance_as_it_is_now(client: httpx.AsyncClient, elsewhere: AsyncEngine) -> None:
    key_id, own = await _kept_key(client, balance="10")
    async with elsewhere.begin() as conn:
        await ledger.credit(conn, key_id, 5_000_000, note="top-up from the CLI")
    shown = (await client.get("/v1/dashboard/billing/balance", headers=own)).json()
    assert shown["balance"] == "15"


async def test_made_up_keys_are_not_kept(client: httpx.AsyncClient) -> None:
    _, own = await _kept_key(client)
    kept = len(_runtime(client).key_rows)
    for _ in range(50):
        made_up = {"Authorization": f"sk-{secrets.token_hex(24)}"}
        assert_openai_error(await client.get("/v1/models", headers=made_up), 401, "invalid_api_key")
    assert len(_runtime(client).key_rows) == kept == 1
    assert (await client.get("/v1/models", headers=own)).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_recent_reads_again_once_its_answer_is_old() -> None:
    reads: list[str] = []

    async def read(key: str) -> str:
        reads.append(key)
        return key.upper()

    clock = Clock()
    recent = Recent(read, ttl=2, size=10, clock=clock)
    assert [await recent.get("a"), await recent.get("a")] == ["A", "A"]
    clock.now = 2.5
    assert await recent.get("a") == "A"
    assert reads == ["a", "a"]


async def test_recent_keeps_at_most_size_answers_and_never_none() -> None:
    async def read(key: int) -> int | None:
        return key if key % 2 else None

    recent = Recent(read, ttl=60, size=3)
    for key in range(20):
        await recent.get(key)
    assert len(recent) == 3


async def test_a_read_begun_before_forget_all_is_not_kept() -> None:
    """A change committed while a read is under way may have been missed by it: its answer serves only
    the lookup that made it."""
    started, finish = asyncio.Event(), asyncio.Event()
    reads: list[str] = []

    async def read(key: str) -> str:
        reads.append(key)
        started.set()
        await finish.wait()
        return "old"

    recent = Recent(read, ttl=60, size=10)
    lookup = asyncio.create_task(recent.get("a"))
    await started.wait()
    recent.forget_all()
    finish.set()
    assert await lookup == "old"
    assert len(recent) == 0
