"""500 concurrent chat requests on a key funded for exactly 100 calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing.audit import verify_ledger
from reelgate.store.tables import api_keys, tasks
from tests.conftest import live_server, make_settings

pytestmark = pytest.mark.timeout(240)


async def test_exactly_the_funded_number_of_tasks(tmp_path: Path, database_url: str) -> None:
    # The gate never opens: tasks are accepted and held, so the test measures acceptance alone.
    held = GatedBackend(FailingBackend(), name="procedural")
    settings = make_settings(tmp_path, database_url=database_url)
    async with live_server(settings, {"procedural": held}) as server:
        key = await server.create_key("100")  # 100 calls at 1 credit
        limits = httpx.Limits(max_connections=500)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:

            async def call(n: int) -> tuple[int, str | None]:
                # Distinct prompts: identical ones would rightly join one task (resend protection).
                body = {
                    "model": "sora-2-hd-15s-chat",
                    "stream": True,
                    "messages": [{"role": "user", "content": f"猫 {n}"}],
                }
                request = client.build_request(
                    "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
                )
                response = await client.send(request, stream=True)
                code = None if response.status_code == 200 else (await response.aread()) and response.json()
                await response.aclose()
                return response.status_code, code and code["error"]["code"]

            results = Counter(await asyncio.gather(*(call(n) for n in range(500))))
        assert results == {(200, None): 100, (429, "insufficient_quota"): 400}
        async with server.app.state.runtime.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(tasks)) == 100
            assert await conn.scalar(select(api_keys.c.balance)) == 0
            assert await verify_ledger(conn) == []
