"""The chat stream over a real socket: its shape, keep-alive, failure, disconnects, billing."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.store.tables import ledger
from tests.conftest import SMALL_MODELS, LiveServer, live_server, make_settings

BODY = {
    "model": "sora-2-hd-15s-chat",
    "messages": [{"role": "user", "content": "中国街头吃西瓜,生成视频比例9:16"}],
}


async def _lines(response: httpx.Response) -> list[str]:
    return [line async for line in response.aiter_lines() if line]


def _chunks(lines: list[str]) -> list[dict[str, Any]]:
    assert all(line.startswith("data: ") for line in lines), lines
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def _content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def _charges(server: LiveServer, task_id: str) -> list[int]:
    async with server.app.state.runtime.engine.connect() as conn:
        rows = await conn.execute(select(ledger.c.amount).where(ledger.c.task_id == task_id))
        return [row.amount for row in rows]


async def test_stream_shape_usage_and_one_charge(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
        ) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            chunks = _chunks(await _lines(r))
        text = _content(chunks)
        task_id = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
        assert await _charges(server, task_id) == [-1_000_000]
    first = chunks[0]
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"
    assert len({c["id"] for c in chunks}) == 1 and all(c["model"] == "sora-2-hd-15s-chat" for c in chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0
    order = [
        "```json",
        '"prompt": "中国街头吃西瓜"',
        "> ID:",
        "排队中",
        "生成中",
        "🏃 进度",
        "生成完成 ✅",
        "sid: `s_",
        "[在线播放▶️](",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), text


async def test_header_first_then_keepalive_dots(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    settings = make_settings(tmp_path, keepalive_seconds=0.4)
    async with (
        live_server(settings, {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key()
        async with client.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json={**BODY, "stream": True},
            headers={"Authorization": key},
        ) as response:
            lines = response.aiter_lines()
            received: list[str] = []
            while "> ID:" not in "".join(received):
                line = await anext(lines)
                if line:
                    received.append(_content(_chunks([line, "data: [DONE]"])))
            assert not gated.gate.is_set()  # the ID line left before any generation finished
            await asyncio.sleep(1.5)
            gated.gate.set()
            rest = [line async for line in lines if line]
    chunks = _chunks(rest)
    dots = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content") == "."]
    assert len(dots) >= 2
    assert "生成完成 ✅" in _content(chunks)


async def test_failure_is_a_line_and_stays_charged(tmp_path: Path) -> None:
    models = {**SMALL_MODELS, "broken": {"backend": "fail", "seconds": 5, "price": "0.25"}}
    settings = make_settings(tmp_path, models=models)
    backends = {"fail": FailingBackend("The GPU is on fire.")}
    async with live_server(settings, backends) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("1")
        body = {**BODY, "model": "broken", "stream": True}
        async with client.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
        ) as r:
            chunks = _chunks(await _lines(r))
        text = _content(chunks)
        assert text.endswith("> 生成失败 ❌ The GPU is on fire.") and "生成完成" not in text
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        task_id = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
        source = (await client.get(f"{server.url}/source/{task_id}")).json()
        assert source["status"] == "failed"
        assert source["error"] == {"code": "generation_failed", "message": "The GPU is on fire."}
        assert await _charges(server, task_id) == [-250_000]


async def test_disconnecting_does_not_cancel(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    async with (
        live_server(make_settings(tmp_path), {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key()
        async with client.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json={**BODY, "stream": True},
            headers={"Authorization": key},
        ) as response:
            text = ""
            async for line in response.aiter_lines():
                text += line
                if "ID: `" in text:
                    break
        task_id = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
        gated.gate.set()
        for _ in range(300):
            source = (await client.get(f"{server.url}/source/{task_id}")).json()
            if source["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert source["status"] == "completed"
        assert (await client.get(source["video_url"])).status_code == 200


async def test_english_and_public_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://video.example.com/")
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key()
        response = await client.post(
            f"{server.url}/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {key}", "Accept-Language": "en-US,en;q=0.9,zh-CN;q=0.8"},
        )
    message = response.json()["choices"][0]["message"]["content"]
    assert "[Preview](https://video.example.com/web/task_" in message and "Done ✅" in message
    assert "](https://video.example.com/cdn/" in message and "生成" not in message
