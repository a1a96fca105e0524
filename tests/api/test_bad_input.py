"""Every bad request is a clear OpenAI-shaped 4xx, and nothing is created or charged."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing.keys import create_key
from reelgate.money import parse_credits
from reelgate.store.tables import ledger, tasks
from tests.conftest import assert_openai_error


@pytest.fixture
def backends() -> dict[str, Any]:
    """Nothing here should ever render: a backend that holds every task it gets."""
    return {"procedural": GatedBackend(FailingBackend(), name="procedural")}


GOOD = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "一只猫"}], "stream": True}


async def _key(client: httpx.AsyncClient, balance: str = "10") -> str:
    async with client.app.state.runtime.engine.begin() as conn:  # type: ignore[attr-defined]
        _, secret = await create_key(conn, balance=parse_credits(balance))
    return secret


async def _counts(client: httpx.AsyncClient) -> tuple[int, int]:
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        n_tasks = await conn.scalar(select(func.count()).select_from(tasks))
        n_entries = await conn.scalar(select(func.count()).select_from(ledger))
    return int(n_tasks or 0), int(n_entries or 0)


def _with(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (_with(model="sora-9"), 404, "model_not_found", "model"),
        (_with(model=...), 400, None, "model"),
        (_with(model=12), 400, None, "model"),
        (_with(messages=...), 400, None, "messages"),
        (_with(messages=[]), 400, None, "messages"),
        (_with(messages="一只猫"), 400, None, "messages"),
        (_with(messages=[{"role": "system", "content": "hi"}]), 400, None, "messages"),
        (_with(messages=[{"role": "user", "content": "生成视频比例9:16"}]), 400, "empty_prompt", "messages"),
        (_with(messages=[{"role": "user", "content": "   "}]), 400, "empty_prompt", "messages"),
        (_with(messages=[{"role": "user", "content": 5}]), 400, None, "messages[0].content"),
        (_with(messages=[{"role": "user", "content": [{"text": "x"}]}]), 400, None, "messages[0].content[0]"),
        (_with(messages=[{"role": "user", "content": "x" * 5000}]), 400, None, "messages"),
        (_with(stream="yes"), 400, None, "stream"),
        (_with(stream_options={"include_usage": "y"}), 400, None, "stream_options.include_usage"),
    ],
)
async def test_invalid_bodies(
    app_client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str | None, param: str
) -> None:
    secret = await _key(app_client)
    before = await _counts(app_client)
    response = await app_client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert_openai_error(response, status, code)
    assert response.json()["error"]["param"] == param
    assert await _counts(app_client) == before


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe", json.dumps({"model": "x"}).encode()[:-1]]
)
async def test_malformed_json(app_client: httpx.AsyncClient, raw: bytes) -> None:
    secret = await _key(app_client)
    response = await app_client.post(
        "/v1/chat/completions",
        content=raw,
        headers={"Authorization": secret, "Content-Type": "application/json"},
    )
    assert_openai_error(response, 400, "invalid_json", "invalid_request_error")
    assert await _counts(app_client) == (0, 1)


async def test_body_over_the_limit(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client)
    huge = {**GOOD, "messages": [{"role": "user", "content": "猫" * 600_000}]}
    response = await app_client.post("/v1/chat/completions", json=huge, headers={"Authorization": secret})
    assert_openai_error(response, 413, "request_too_large")
    assert await _counts(app_client) == (0, 1)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer sk-wrong", "sk-wrong", "Basic dXNlcjpwYXNz", "Bearer  "]
)
async def test_missing_or_unknown_key(app_client: httpx.AsyncClient, header: str | None) -> None:
    await _key(app_client)
    headers = {"Authorization": header} if header is not None else {}
    response = await app_client.post("/v1/chat/completions", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert_openai_error(response, 401, response.json()["error"]["code"], "invalid_request_error")
    assert await _counts(app_client) == (0, 1)


async def test_balance_too_low(app_client: httpx.AsyncClient) -> None:
    secret = await _key(app_client, balance="0.5")
    response = await app_client.post("/v1/chat/completions", json=GOOD, headers={"Authorization": secret})
    assert_openai_error(response, 429, "insufficient_quota", "insufficient_quota")
    assert await _counts(app_client) == (0, 1)


async def test_unknown_routes_and_tasks_are_404(app_client: httpx.AsyncClient) -> None:
    for path in (
        "/v1/nothing",
        "/source/task_01k8sxz17gewz8kac074xz4crh",
        "/source/../etc/passwd",
        "/source/x",
    ):
        assert_openai_error(await app_client.get(path), 404, "not_found")
    assert (await app_client.get("/web/task_01k8sxz17gewz8kac074xz4crh")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/cdn/20250101/" + "a" * 32 + ".mp4",
        "/cdn/20250101/../../reelgate.db",
        "/cdn/%2e%2e/%2e%2e/reelgate.db",
        "/cdn/..%2F..%2Freelgate.db",
        "/cdn/20250101/" + "A" * 32 + ".mp4",
        "/cdn/2025/x.mp4",
        "/cdn/reelgate.db",
        "/cdn/20250101/" + "a" * 32 + ".txt",
    ],
)
async def test_cdn_serves_nothing_but_stored_files(app_client: httpx.AsyncClient, path: str) -> None:
    response = await app_client.get(path)
    assert response.status_code == 404
