"""Background requests in the usage report, on SQLite and PostgreSQL: counted, never as tasks."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing.keys import create_key
from reelgate.billing.usage import GroupBy, UsageFilter, usage
from reelgate.clients.background import TEMPLATES
from reelgate.clients.record import record_background


async def test_background_requests_are_counted_by_key_model_and_day(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key, _ = await create_key(conn, balance=1_000_000)
    for template in TEMPLATES[:3]:
        await record_background(engine, key.id, "sora-2-hd-10s-chat", template)
    today = datetime.now(UTC).date().isoformat()
    async with engine.connect() as conn:
        by_day = await usage(conn, [GroupBy.DAY], UsageFilter())
        by_model_key = await usage(conn, [GroupBy.MODEL, GroupBy.KEY], UsageFilter(key_id=key.id))
        later = await usage(conn, [GroupBy.KEY], UsageFilter(since=datetime(2100, 1, 1, tzinfo=UTC)))
    assert [(row.group, row.background, row.tasks, row.charged) for row in by_day] == [((today,), 3, {}, 0)]
    assert [(row.group, row.background) for row in by_model_key] == [(("sora-2-hd-10s-chat", key.id), 3)]
    assert later == []
