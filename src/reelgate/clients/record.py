"""Keeping count of the background requests answered for free: one row each, for the usage report."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.clients.background import Template
from reelgate.store.tables import background_requests


async def record_background(engine: AsyncEngine, key_id: str, model: str, template: Template) -> None:
    values = {
        "key_id": key_id,
        "model": model,
        "client": template.client,
        "template": template.name,
        "created_at": datetime.now(UTC),
    }
    async with engine.begin() as conn:
        await conn.execute(insert(background_requests).values(values))
