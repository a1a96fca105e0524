"""Faults of the server's own: a full disk, a database that goes away. The caller is never charged for
them, requests are refused with 503 + Retry-After before anything is charged, streams end well-formed."""

from __future__ import annotations

import asyncio
import errno
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.billing.audit import verify_ledger
from reelgate.store.db import writing_engines
from reelgate.store.tables import api_keys, ledger, tasks
from tests.api.test_chat_stream import BODY, _chunks, _content
from tests.conftest import LiveServer, assert_openai_error, live_server, make_settings


async def _books(server: LiveServer) -> tuple[list[int], list[str], int]:
    """Balances, ledger entry kinds and the task count, with the ledger verified."""
    async with server.app.state.runtime.engine.connect() as conn:
        assert await verify_ledger(conn) == []
        balances = list((await conn.scalars(select(api_keys.c.balance))).all())
        kinds = list((await conn.scalars(select(ledger.c.kind).order_by(ledger.c.id))).all())
        count = len((await conn.scalars(select(tasks.c.id))).all())
    return balances, kinds, count


async def _task(client: httpx.AsyncClient, server: LiveServer, task_id: str, status: str) -> dict[str, Any]:
    for _ in range(600):
        task = (await client.get(f"{server.url}/source/{task_id}")).json()
        if task.get("status") == status:
            return dict(task)
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never became {status}: {task}")


async def test_low_disk_refuses_new_tasks_before_charging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=30) as client:
        key = await server.create_key("10")
        headers = {"Authorization": f"Bearer {key}"}
        real = shutil.disk_usage
        monkeypatch.setattr(
            "reelgate.storage.space.shutil.disk_usage", lambda path: real(path)._replace(free=10 * 1024 * 1024)
        )
        ready = await client.get(f"{server.url}/readyz")
        chat = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers=headers)
        video = await client.post(f"{server.url}/v1/videos", json={"prompt": "一只猫"}, headers=headers)
        for response in (ready, chat, video):
            assert_openai_error(response, 503, "service_unavailable", "server_error")
            assert int(response.headers["retry-after"]) > 0
        assert "disk" in ready.json()["error"]["message"]
        assert await _books(server) == ([10_000_000], ["credit"], 0)
        monkeypatch.undo()
        assert (await client.get(f"{server.url}/readyz")).status_code == 200


async def test_a_full_disk_fails_the_task_refunds_it_and_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = shutil.copyfile

    def disk_full(source: Any, target: Any, **kwargs: Any) -> Any:
        if not str(target).endswith(".part"):
            return real_copy(source, target, **kwargs)
        Path(target).write_bytes(b"\0" * 1000)  # the first blocks fitted, then the disk was full
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr("reelgate.storage.local.shutil.copyfile", disk_full)
    settings = make_settings(tmp_path)  # charge_on_failure stays true: this failure is ours, not theirs
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        reply = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": key})
        assert reply.status_code == 200
        content = reply.json()["choices"][0]["message"]["content"]
        assert "生成失败 ❌" in content and "disk is full" in content
        task_id = re.search(r"ID: `(task_\w+)`", content).group(1)  # type: ignore[union-attr]
        task = await _task(client, server, task_id, "failed")
        assert task["error"]["code"] == "storage_full", task
        assert await _books(server) == ([10_000_000], ["credit", "charge", "refund"], 1)
    leftovers = [p for p in settings.data_dir.rglob("*") if p.is_file() and p.parent.name != settings.data_dir.name]
    assert leftovers == []  # no partial copy in media/, no scratch folder in work/


@contextmanager
def database_down(engine: AsyncEngine) -> Iterator[None]:
    """Pooled connections are found dead and every new one fails, as when SQLite's file cannot be opened
    (for the engine and for its synchronous twin on the same file, as for any process of it)."""

    def dead(*_args: Any) -> None:
        raise DisconnectionError("the database went away")

    def refuse(*_args: Any) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    engines = writing_engines(engine)
    for each in engines:
        event.listen(each, "do_connect", refuse)
        event.listen(each.pool, "checkout", dead)
    try:
        yield
    finally:
        for each in engines:
            event.remove(each.pool, "checkout", dead)
            event.remove(each, "do_connect", refuse)


async def test_database_down_503_streams_end_well_and_the_task_finishes_later(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    settings = make_settings(tmp_path, keepalive_seconds=0.4)
    async with (
        live_server(settings, {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key("10")
        headers = {"Authorization": key}
        engine = server.app.state.runtime.engine
        body = {**BODY, "stream": True}
        async with client.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers) as r:
            lines = r.aiter_lines()
            seen = ""
            while "生成中" not in seen:
                seen += await anext(lines)
            await gated.entered.wait()
            with database_down(engine):
                rest = [line async for line in lines if line]
                refused = [
                    await client.get(f"{server.url}/v1/videos", headers=headers),
                    await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers=headers),
                    await client.get(f"{server.url}/readyz"),
                ]
        for response in refused:
            assert_openai_error(response, 503, "service_unavailable", "server_error")
            assert response.headers["retry-after"]
        chunks = _chunks(rest)
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        text = _content(chunks)
        task_id = re.search(r"/source/(task_\w+)\)", text).group(1)  # type: ignore[union-attr]
        assert "任务仍在生成中" in text and f"[原始数据]({server.url}/source/{task_id})" in text
        gated.gate.set()
        await _task(client, server, task_id, "completed")
        assert await _books(server) == ([9_000_000], ["credit", "charge"], 1)


class CrashingBackend:
    """A bug in the server's own code: not the caller's fault."""

    name = "procedural"

    async def generate(self, *_args: Any) -> Any:
        raise RuntimeError("a bug")


async def test_a_crash_of_our_own_is_refunded_even_under_charge_on_failure(tmp_path: Path) -> None:
    async with (
        live_server(make_settings(tmp_path), {"procedural": CrashingBackend()}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key("10")
        reply = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": key})
        content = reply.json()["choices"][0]["message"]["content"]
        task_id = re.search(r"ID: `(task_\w+)`", content).group(1)  # type: ignore[union-attr]
        assert (await _task(client, server, task_id, "failed"))["error"]["code"] == "internal_error"
        assert await _books(server) == ([10_000_000], ["credit", "charge", "refund"], 1)
