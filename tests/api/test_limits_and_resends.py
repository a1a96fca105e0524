"""Rate limits (shared across processes), resend protection and Idempotency-Key."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.billing.audit import verify_ledger
from reelgate.store.tables import api_keys, ledger
from tests.conftest import LiveServer, assert_openai_error, live_server, make_settings


def _body(content: str = "一只猫", stream: bool = False) -> dict[str, Any]:
    return {"model": "sora-2-hd-15s-chat", "stream": stream, "messages": [{"role": "user", "content": content}]}


def _held() -> dict[str, Any]:
    return {"procedural": GatedBackend(FailingBackend(), name="procedural")}


async def _set_limits(server: LiveServer, **values: int) -> None:
    async with server.app.state.runtime.engine.begin() as conn:
        await conn.execute(update(api_keys).values(**values))


async def _post(
    client: httpx.AsyncClient, server: LiveServer, key: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key, **headers})


async def _open(client: httpx.AsyncClient, server: LiveServer, key: str, body: dict[str, Any]) -> httpx.Response:
    """Start a request and hang up once the status and headers are in; its task lives on regardless."""
    request = client.build_request(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
    )
    response = await client.send(request, stream=True)
    if response.status_code != 200:
        await response.aread()
    await response.aclose()
    return response


async def test_requests_per_minute(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path), _held()) as server, httpx.AsyncClient(timeout=30) as client:
        key = await server.create_key("100")
        await _set_limits(server, rpm_limit=3)
        accepted = [await _open(client, server, key, _body(f"猫 {n}", stream=True)) for n in range(3)]
        assert [r.status_code for r in accepted] == [200] * 3
        assert [r.headers["x-ratelimit-remaining-requests"] for r in accepted] == ["2", "1", "0"]
        assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in accepted)
        refused = await _open(client, server, key, _body("猫 4", stream=True))
        assert_openai_error(refused, 429, "rate_limit_exceeded", "requests")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        models = await client.get(f"{server.url}/v1/models", headers={"Authorization": key})
        assert models.headers["x-ratelimit-limit-requests"] == "3"


async def test_concurrency_cap(tmp_path: Path) -> None:
    async with (
        live_server(make_settings(tmp_path, concurrency_limit=1), _held()) as server,
        httpx.AsyncClient(timeout=30) as client,
    ):
        key = await server.create_key("100")
        first = await _open(client, server, key, _body("a", stream=True))
        assert first.status_code == 200
        second = await _post(client, server, key, _body("b", stream=True))
        assert_openai_error(second, 429, "rate_limit_exceeded")
        assert "at once" in second.json()["error"]["message"] and second.headers["retry-after"]


async def test_two_processes_share_one_limit(tmp_path: Path, postgres_url: str) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url, rpm_limit=5)
    async with live_server(settings, _held()) as one, live_server(settings, _held()) as two:
        key = await one.create_key("100")
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(_open(client, (one, two)[n % 2], key, _body(f"猫 {n}", stream=True)) for n in range(12))
            )
        assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 7
        async with one.app.state.runtime.engine.connect() as conn:
            assert await verify_ledger(conn) == []


async def test_a_resend_joins_the_running_task(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    async with (
        live_server(make_settings(tmp_path), {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key("10")
        first = asyncio.create_task(_post(client, server, key, _body("雨中的红伞", stream=True)))
        await gated.entered.wait()
        # The same messages, re-sent with different whitespace, as a slow client does.
        again = asyncio.create_task(_post(client, server, key, _body(" 雨中的红伞 ", stream=True)))
        await asyncio.sleep(0.3)
        gated.gate.set()
        texts = [(await request).text for request in (first, again)]
        ids = [re.search(r"ID: `(task_\w+)`", t).group(1) for t in texts]  # type: ignore[union-attr]
        videos = [re.search(r"\((http[^)]+\.mp4)\)", t).group(1) for t in texts]  # type: ignore[union-attr]
        assert ids[0] == ids[1] and videos[0] == videos[1]
        assert "生成完成 ✅" in texts[1]
        async with server.app.state.runtime.engine.connect() as conn:
            charges = (await conn.execute(select(ledger.c.amount).where(ledger.c.task_id == ids[0]))).all()
            balance = await conn.scalar(select(api_keys.c.balance))
        assert len(charges) == 1 and balance == 9_000_000
        # Once the task has ended, the same request is a new video.
        third = await _post(client_for_reuse := httpx.AsyncClient(timeout=60), server, key, _body("雨中的红伞"))
        await client_for_reuse.aclose()
        assert re.search(r"ID: `(task_\w+)`", third.json()["choices"][0]["message"]["content"]).group(1) != ids[0]  # type: ignore[union-attr]


async def test_idempotency_key_replay(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        headers = {"Idempotency-Key": "order-42"}
        first = await _post(client, server, key, _body("海上日出"), **headers)
        replay = await _post(client, server, key, _body("海上日出"), **headers)
        task_ids = [
            re.search(r"ID: `(task_\w+)`", r.json()["choices"][0]["message"]["content"]).group(1)
            for r in (first, replay)
        ]  # type: ignore[union-attr]
        assert task_ids[0] == task_ids[1]
        misuse = await _post(client, server, key, _body("别的内容"), **headers)
        assert_openai_error(misuse, 400, None, "invalid_request_error")
        async with server.app.state.runtime.engine.connect() as conn:
            assert await conn.scalar(select(api_keys.c.balance)) == 9_000_000
