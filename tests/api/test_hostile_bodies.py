"""Bodies that used to end in a 500: each is a 400 in OpenAI's envelope, on SQLite and on PostgreSQL alike,
with no task, no key and no ledger entry made, and every balance as it was.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from reelgate.store.tables import tasks
from tests.api.test_admin import TOKEN, books, client_for, new_key
from tests.conftest import assert_openai_error, live_server, make_settings

CHAT = "/v1/chat/completions"
MODEL = "sora-2-hd-15s-chat"
DEPTH = 100_000


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _chat(prompt_json: str) -> bytes:
    """A chat body whose prompt is given as raw JSON text, so escapes reach the server as written."""
    return f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": {prompt_json}}}]}}'.encode()


def _video(prompt_json: str) -> bytes:
    return f'{{"model": "sora-2", "prompt": {prompt_json}}}'.encode()


@pytest.fixture
def backends() -> dict[str, Any]:
    from reelgate.backends.fake import FailingBackend, GatedBackend

    return {"procedural": GatedBackend(FailingBackend(), name="procedural")}


@pytest.fixture
async def client(tmp_path: Path, database_url: str, backends: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_settings(tmp_path, admin_token=TOKEN, database_url=database_url), backends) as client:
        yield client


async def _state(client: httpx.AsyncClient) -> tuple[object, ...]:
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        n_tasks = await conn.scalar(select(func.count()).select_from(tasks))
    return (n_tasks, *await books(client))


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (CHAT, _chat(_nested(DEPTH)), "invalid_json"),
        (CHAT, _chat(_nested(65)), "invalid_json"),
        ("/v1/videos", _video(_nested(DEPTH)), "invalid_json"),
        (CHAT, _chat('"a cat \\ud800 running"'), "invalid_text"),
        (CHAT, _chat('"a cat \\udfff"'), "invalid_text"),
        (CHAT, _chat('[{"type": "text", "text": "\\ud83d"}]'), "invalid_text"),
        (CHAT, _chat('"a cat\\u0000 running"'), "invalid_text"),
        ("/v1/videos", _video('"a cat \\ud800"'), "invalid_text"),
        ("/v1/videos", _video('"a cat\\u0000"'), "invalid_text"),
        (CHAT, _chat('"a cat SURROGATE"').replace(b"SURROGATE", b"\xed\xa0\x80"), "invalid_text"),
        (CHAT, _chat('"a cat\\u0000"').decode().encode("utf-16"), "invalid_text"),
    ],
    ids=[
        "chat-deep",
        "chat-65-deep",
        "videos-deep",
        "chat-surrogate",
        "chat-low-surrogate",
        "chat-part-surrogate",
        "chat-nul",
        "videos-surrogate",
        "videos-nul",
        "chat-utf8-surrogate",
        "chat-utf16-nul",
    ],
)
async def test_hostile_json_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, path: str, body: bytes, code: str
) -> None:
    key = await new_key(client)
    before = await _state(client)
    headers = {"Authorization": f"Bearer {key['secret']}", "Content-Type": "application/json"}
    response = await client.post(path, content=body, headers=headers)
    assert_openai_error(response, 400, code, "invalid_request_error")
    assert await _state(client) == before


async def test_a_nul_in_an_uploaded_form_prompt_is_a_400(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    before = await _state(client)
    response = await client.post(
        "/v1/videos",
        data={"prompt": "a cat\x00", "model": "sora-2"},
        files={"input_reference": ("cat.png", b"\x89PNG\r\n\x1a\n", "image/png")},  # its temp file is closed too
        headers={"Authorization": f"Bearer {key['secret']}"},
    )
    assert_openai_error(response, 400, "invalid_text")
    assert await _state(client) == before


async def test_a_proper_emoji_is_still_a_prompt(client: httpx.AsyncClient) -> None:
    key = await new_key(client)
    body = _video(json.dumps("a cat \U0001f600 running"))  # a valid surrogate pair, as JSON escapes it
    response = await client.post("/v1/videos", content=body, headers={"Authorization": f"Bearer {key['secret']}"})
    assert response.status_code == 200, response.text
    assert response.json()["prompt"] == "a cat \U0001f600 running"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/balance", {"amount": "1e999999", "reason": "top-up"}),
        ("/balance", {"amount": "-1e999999", "reason": "top-up"}),
        ("/balance", {"amount": "1e-999999", "reason": "top-up"}),
        ("/balance", {"amount": "5", "reason": "top-up \ud800"}),
        ("/balance", {"amount": "5", "reason": "top-up \x00"}),
        ("", {"name": "bob\x00"}),
    ],
)
async def test_hostile_admin_bodies_are_400s(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    key = await new_key(client)
    before = await _state(client)
    raw = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as the escape \ud800
    verb = client.post if path else client.patch
    response = await verb(f"/admin/keys/{key['id']}{path}", content=raw, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, None if "amount" in body and "e" in body["amount"] else "invalid_text")
    assert await _state(client) == before


async def test_deep_admin_json_is_a_400(client: httpx.AsyncClient) -> None:
    before = await _state(client)
    raw = '{"balance": "1", "name": ' + _nested(DEPTH) + "}"
    response = await client.post("/admin/keys", content=raw, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, None, "invalid_request_error")
    assert await _state(client) == before


async def test_an_upload_over_the_image_limit_is_a_413_and_charges_nothing(
    tmp_path: Path, database_url: str, backends: dict[str, Any]
) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    upload = io.BytesIO()
    Image.fromarray(noise).save(upload, format="PNG")
    assert upload.tell() > 2048  # over the image limit, far under the form's
    settings = make_settings(tmp_path, admin_token=TOKEN, database_url=database_url, image_max_bytes=2048)
    async with client_for(settings, backends) as client:
        key = await new_key(client)
        before = await _state(client)
        response = await client.post(
            "/v1/videos",
            data={"prompt": "a cat", "model": "sora-2"},
            files={"input_reference": ("cat.png", upload.getvalue(), "image/png")},
            headers={"Authorization": f"Bearer {key['secret']}"},
        )
        assert_openai_error(response, 413, "request_too_large")
        assert response.json()["error"]["param"] == "input_reference"
        assert await _state(client) == before


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/videos/task_%00x", 404),
        ("/v1/videos?after=task_%00", 200),
        ("/v1/videos?limit=5&after=x%00", 200),
        ("/source/task_%00", 404),
        ("/web/task_%00", 404),
        ("/admin/keys/key_%00", 404),
        ("/admin/keys?after=key_%00", 200),
    ],
)
async def test_a_nul_in_the_url_finds_nothing_on_both_databases(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    """PostgreSQL refused the NUL with a 500; now nothing with it exists on either database."""
    key = await new_key(client)
    headers = {} if path.startswith("/admin") else {"Authorization": f"Bearer {key['secret']}"}
    response = await client.get(path, headers=headers)
    assert response.status_code == status, response.text
    if status == 200 and not path.startswith("/web"):
        assert response.json()["data"] == []


async def test_healthz_answers_while_a_hostile_prompt_is_read(tmp_path: Path) -> None:
    """A 1 MiB prompt of spaces froze the event loop for hours (quadratic cleaning) before any balance check."""
    async with live_server(make_settings(tmp_path)) as server:
        secret = await server.create_key("0")
        text = "a" + " " * (1_048_576 - 200) + "b"
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            hostile = asyncio.create_task(http.post(CHAT, json=body, headers={"Authorization": f"Bearer {secret}"}))
            await asyncio.sleep(0)  # the hostile request goes first
            health = await http.get("/healthz")
            refused = await hostile
    assert health.status_code == 200
    assert_openai_error(refused, 400, None)
    assert "longer than 4000 characters" in refused.json()["error"]["message"]
