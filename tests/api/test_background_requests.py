"""Chat clients' background requests over HTTP: answered free in the client's form; real prompts make videos."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from reelgate.admin.local import LocalAdmin
from reelgate.admin.schemas import UsageQuery
from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.billing.usage import GroupBy
from reelgate.store.tables import api_keys, ledger, tasks
from tests.clients.requests import CASES
from tests.conftest import LiveServer, assert_openai_error, live_server, make_settings

MODEL = "sora-2-hd-10s-chat"
PROMPT = "海边日落，海鸥飞过，横屏"
TASK_ID = re.compile(r"ID: `(task_\w+)`")


async def _chat(client: httpx.AsyncClient, server: LiveServer, key: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key})


def _streamed_content(response: httpx.Response) -> str:
    lines = [line for line in response.text.split("\n") if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


async def _books(server: LiveServer) -> tuple[int, int, int]:
    """Tasks, ledger entries and the balance (micro-credits) of the one key."""
    async with server.app.state.runtime.engine.connect() as conn:
        n_tasks = await conn.scalar(select(func.count()).select_from(tasks))
        n_entries = await conn.scalar(select(func.count()).select_from(ledger))
        balance = await conn.scalar(select(api_keys.c.balance))
    return int(n_tasks or 0), int(n_entries or 0), int(balance or 0)


def _check(client: str, name: str, content: str) -> None:
    """The answer is what that client parses, made from the chat's video."""
    if client == "open-webui" and name != "emoji":
        parsed = json.loads(content)
        expected = {"title": {"title": "海边日落"}, "queries": {"queries": []}, "autocomplete": {"text": ""}}
        if name in expected:
            assert parsed == expected[name]
        elif name == "tags":
            assert "海边日落" in parsed["tags"]
        elif name == "follow_ups":
            assert "改成竖屏" in parsed["follow_ups"]
        else:
            assert parsed == {"prompt": "海边日落，海鸥飞过"}
    elif name.startswith("summary"):
        assert "海边日落" in content
    else:
        assert content in ("海边日落", "🎬"), (client, name, content)


async def test_background_requests_are_free_and_real_prompts_still_make_videos(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        first = await _chat(client, server, key, {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})
        reply = first.json()["choices"][0]["message"]["content"]
        history = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": reply}]
        before = await _books(server)
        price = 10_000_000 - before[2]
        assert before[:2] == (1, 2) and price > 0
        for case in CASES:
            for stream in (False, True):
                body = {"model": MODEL, "stream": stream, "messages": case.build(history), "temperature": 0.1}
                response = await _chat(client, server, key, body)
                assert response.status_code == 200, response.text
                content = _streamed_content(response) if stream else response.json()["choices"][0]["message"]["content"]
                _check(case.client, case.name, content)
        assert await _books(server) == before
        metrics = (await client.get(f"{server.url}/metrics")).text
        assert 'reelgate_background_requests_total{client="open-webui",template="title"} 2.0' in metrics
        report = await LocalAdmin(server.app.state.runtime.engine).usage(UsageQuery(group_by=GroupBy.MODEL))
        assert [(row.group, row.total_tasks, row.background_requests) for row in report.data] == [
            (MODEL, 1, 2 * len(CASES))
        ]
        # A prompt that starts like a task, with the same history, is still a video and a charge.
        follow_up = [*history, {"role": "user", "content": "Task: 改成下雪的夜晚"}]
        again = await _chat(client, server, key, {"model": MODEL, "messages": follow_up})
        assert TASK_ID.search(again.json()["choices"][0]["message"]["content"])
        assert await _books(server) == (2, 3, before[2] - price)


async def test_prompts_that_look_like_tasks_still_make_videos(tmp_path: Path) -> None:
    prompts = [
        "Task: a red fox trotting through fresh snow at dawn",
        "标题：春天来了。画面：樱花飘落，小女孩在树下转圈",
        'Use this JSON: { "title": "Neon Tokyo" } and show a taxi driving through neon-lit Shinjuku at night',
    ]
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        for prompt in prompts:
            response = await _chat(
                client, server, key, {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
            )
            assert TASK_ID.search(response.json()["choices"][0]["message"]["content"]), prompt
        n_tasks, n_entries, _ = await _books(server)
        assert (n_tasks, n_entries) == (3, 4)


async def test_a_server_may_refuse_background_requests(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, background_answers=False)
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        history = [{"role": "user", "content": PROMPT}]
        response = await _chat(client, server, key, {"model": MODEL, "messages": CASES[0].build(history)})
        assert_openai_error(response, 400, "background_request_refused", "invalid_request_error")
        assert "makes videos" in response.json()["error"]["message"]
        assert await _books(server) == (0, 1, 10_000_000)


async def test_the_same_message_streamed_and_not_is_one_video(tmp_path: Path) -> None:
    gated = GatedBackend(ProceduralBackend(), name="procedural")
    async with (
        live_server(make_settings(tmp_path), {"procedural": gated}) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        key = await server.create_key("10")
        messages = [{"role": "user", "content": PROMPT}]
        streamed = asyncio.create_task(
            _chat(client, server, key, {"model": MODEL, "messages": messages, "stream": True})
        )
        await gated.entered.wait()
        plain_body = {"model": MODEL, "messages": messages, "max_tokens": 512, "temperature": 0.7, "top_p": 0.9, "n": 1}
        plain = asyncio.create_task(_chat(client, server, key, plain_body))
        await asyncio.sleep(0.3)
        gated.gate.set()
        texts = [_streamed_content(await streamed), (await plain).json()["choices"][0]["message"]["content"]]
        ids = {TASK_ID.search(text).group(1) for text in texts}  # type: ignore[union-attr]
        assert len(ids) == 1 and all("生成完成 ✅" in text for text in texts)
        n_tasks, n_entries, balance = await _books(server)
        assert (n_tasks, n_entries) == (1, 2) and balance == 10_000_000 - 800_000
