"""The operator's view of webhook deliveries: pages that do not shift, and pruning of the ended ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.admin.local import LocalAdmin
from reelgate.billing import keys
from reelgate.store.tables import webhook_deliveries
from reelgate.tasks.models import TaskStatus
from reelgate.webhooks import store
from reelgate.webhooks.sender import prune_ended
from tests.conftest import make_settings
from tests.store.test_store import _task

DAY = timedelta(days=1)


async def _deliveries(engine: AsyncEngine, count: int, start: datetime) -> list[str]:
    """`count` ended tasks of one key with one endpoint, a day apart from `start`: their delivery ids."""
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=1)
        await store.add_endpoint(conn, key.id, "https://hooks.example.com/in", start)
        for day in range(count):
            task = replace(_task(key.id), status=TaskStatus.COMPLETED)
            await store.enqueue(conn, task, start + day * DAY)
        page = await store.deliveries(conn, limit=1000)
    return [delivery.id for delivery in page.items]


async def _set_state(engine: AsyncEngine, ids: list[str], state: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids)).values(state=state))


async def test_pages_cover_every_delivery_once_newest_first(engine: AsyncEngine) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    newest_first = await _deliveries(engine, 7, start)
    assert len(newest_first) == 7
    seen: list[str] = []
    after = None
    async with engine.connect() as conn:
        while True:
            page = await store.deliveries(conn, limit=3, after=after)
            seen += [delivery.id for delivery in page.items]
            if not page.has_more:
                break
            after = page.items[-1].id
    assert seen == newest_first
    async with engine.begin() as conn:  # a new delivery does not shift the pages already read
        key_id = (await store.endpoints_of(conn))[0].key_id
        await store.enqueue(conn, replace(_task(key_id), status=TaskStatus.FAILED), start + 30 * DAY)
        later = await store.deliveries(conn, limit=3, after=newest_first[2])
    assert [d.id for d in later.items] == newest_first[3:6]


async def test_pruning_removes_only_old_deliveries_that_ended(engine: AsyncEngine) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = list(reversed(await _deliveries(engine, 6, start)))  # oldest first: day 0 .. day 5
    await _set_state(engine, [ids[0], ids[1], ids[4]], "delivered")
    await _set_state(engine, [ids[2]], "failed")
    # ids[3] is still pending (never pruned); ids[4] ended but is newer than the cut; ids[5] pending.
    removed = await prune_ended(engine, start + 3.5 * DAY)
    async with engine.connect() as conn:
        left = [d.id for d in (await store.deliveries(conn, limit=100)).items]
    assert removed == 3
    assert sorted(left) == sorted(ids[3:])
    assert await prune_ended(engine, start + 3.5 * DAY) == 0


async def test_the_admin_api_pages_deliveries(tmp_path: Path) -> None:
    from reelgate.app import create_app

    settings = make_settings(tmp_path, admin_token="admin-secret-for-tests")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.runtime.engine
        newest_first = await _deliveries(engine, 5, datetime(2026, 1, 1, tzinfo=UTC))
        headers = {"Authorization": "Bearer admin-secret-for-tests"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as http:
            first = (await http.get("/admin/webhook-deliveries", params={"limit": 2})).json()
            second = (
                await http.get("/admin/webhook-deliveries", params={"limit": 2, "after": first["last_id"]})
            ).json()
            too_many = await http.get("/admin/webhook-deliveries", params={"limit": 1000})
        assert [d["id"] for d in first["data"]] == newest_first[:2] and first["has_more"] is True
        assert [d["id"] for d in second["data"]] == newest_first[2:4] and second["has_more"] is True
        assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
        listed = await LocalAdmin(engine).webhook_deliveries(limit=5)
        assert [d.id for d in listed.data] == newest_first and listed.has_more is False
