"""Many streams at once: one reader of the task row for all of them, keep-alive on each stream's own
clock, and a full connection pool answered with a 503 (busy, try again), never a 500."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.store.db import writing_engines
from reelgate.store.tables import api_keys, ledger, tasks
from tests.api.test_chat_stream import BODY, _chunks
from tests.conftest import LiveServer, assert_openai_error, live_server, make_settings

STREAMS = 200
KEEPALIVE = (".", "..")


def _pieces(chunks: list[dict[str, Any]]) -> list[str]:
    """The content pieces of a stream, without its keep-alive dots (each stream keeps its own time)."""
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    return [piece for piece in pieces if piece and piece not in KEEPALIVE]


async def _until(lines: AsyncIterator[str], words: str) -> list[str]:
    """The stream's lines up to the first that shows `words`."""
    head: list[str] = []
    while not head or words not in head[-1]:
        line = await anext(lines)
        if line:
            head.append(line)
    return head


def _count_row_reads(server: LiveServer) -> list[str]:
    """Every SELECT that reads task rows by id, as it is sent."""
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        by_id = "tasks.id IN" in statement or "tasks.id = " in statement
        if statement.lstrip().upper().startswith("SELECT") and "FROM tasks" in statement and by_id:
            reads.append(statement)

    event.listen(server.app.state.runtime.engine.sync_engine, "before_cursor_execute", seen)
    return reads


def _capacity(pool: Any) -> int:
    return int(pool.size() + pool._max_overflow)


async def _books(server: LiveServer) -> tuple[list[int], int, int]:
    """Balances, charges and tasks."""
    async with server.app.state.runtime.engine.connect() as conn:
        balances = list((await conn.scalars(select(api_keys.c.balance))).all())
        charges = len((await conn.scalars(select(ledger.c.id).where(ledger.c.kind == "charge"))).all())
        count = len((await conn.scalars(select(tasks.c.id))).all())
    return balances, charges, count


async def test_two_hundred_streams_of_one_task_see_the_same_pieces_from_one_reader(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    settings = make_settings(tmp_path, keepalive_seconds=2)
    limits = httpx.Limits(max_connections=STREAMS + 10)
    async with (
        live_server(settings, {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=120, limits=limits) as client,
    ):
        key = await server.create_key("10")
        reads = _count_row_reads(server)
        opened = 0
        all_open = asyncio.Event()

        async def stream() -> list[dict[str, Any]]:
            nonlocal opened
            body = {**BODY, "stream": True}  # the same request: every re-send joins the one task
            async with client.stream(
                "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
            ) as r:
                assert r.status_code == 200
                lines = r.aiter_lines()
                head = await _until(lines, "ID:")
                opened += 1
                if opened == STREAMS:
                    all_open.set()
                return _chunks([*head, *[line async for line in lines if line]])

        streams = [asyncio.create_task(stream()) for _ in range(STREAMS)]
        await asyncio.wait_for(all_open.wait(), 60)
        await gated.entered.wait()
        gated.gate.set()
        results = [_pieces(chunks) for chunks in await asyncio.gather(*streams)]
        assert await _books(server) == ([9_000_000], 1, 1)  # one task, charged once
    assert all(pieces == results[0] for pieces in results)
    text = "".join(results[0])
    assert "生成完成 ✅" in text and re.search(r"ID: `task_\w+`", text)
    # No stream read its row (each started from what admission wrote); only the one shared poll read rows.
    assert len(reads) < STREAMS / 10, len(reads)


async def test_keep_alive_leaves_on_time_while_the_task_row_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    settings = make_settings(tmp_path, keepalive_seconds=0.4)
    async with live_server(settings, {"procedural": gated}) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        rows = server.app.state.runtime.rows
        stuck, reading = asyncio.Event(), asyncio.Event()
        real_read = rows._read

        async def slow_read(task_ids: list[str]) -> Any:
            reading.set()
            await stuck.wait()  # a database that takes its time
            return await real_read(task_ids)

        body = {**BODY, "stream": True}
        async with client.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
        ) as r:
            lines = r.aiter_lines()
            head = await _until(lines, "生成中")
            monkeypatch.setattr(rows, "_read", slow_read)
            await asyncio.wait_for(reading.wait(), 30)  # the periodic read began and hangs
            dots = 0
            while dots < 3:  # dots keep coming although no snapshot can
                chunk = _chunks([(await _until(lines, "data:"))[-1], "data: [DONE]"])[0]
                dots += chunk["choices"][0]["delta"].get("content") in KEEPALIVE
            stuck.set()
            gated.gate.set()
            text = "".join(_pieces(_chunks([*head, *[line async for line in lines if line]])))
        assert "生成完成 ✅" in text


async def test_a_full_connection_pool_is_a_503_to_retry_and_charges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reelgate.store.db.POOL_WAIT_SECONDS", 0.5)
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        engine = server.app.state.runtime.engine
        twins = writing_engines(engine)[1:]  # the request path's own connections on SQLite
        assert twins
        held = [await engine.connect() for _ in range(_capacity(engine.sync_engine.pool))]
        held_too = [twin.connect() for twin in twins for _ in range(_capacity(twin.pool))]
        try:
            body = {**BODY, "stream": True}
            refused = await client.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key})
        finally:
            for conn in held:
                await conn.close()
            for sync_conn in held_too:
                sync_conn.close()
        assert_openai_error(refused, 503, "service_unavailable", "server_error")
        assert int(refused.headers["retry-after"]) > 0 and "busy" in refused.json()["error"]["message"]
        assert await _books(server) == ([10_000_000], 0, 0)
        again = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": key})
        assert again.status_code == 200
