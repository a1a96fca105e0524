"""A real server killed mid-task, and the `openai` package as a client."""

from __future__ import annotations

import sqlite3
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

SMALL = {
    "sora-2-hd-15s-chat": {"portrait": "144x256", "landscape": "256x144", "fps": 8},
    "sora-2-hd-10s-chat": {"portrait": "144x256", "landscape": "256x144", "fps": 8},
}
#: Big enough that rendering takes several seconds, so the kill lands mid-render.
MEDIUM = {"sora-2-hd-15s-chat": {"portrait": "576x1024", "fps": 24}}


def _wait_for(server: Server, task_id: str, predicate, timeout: float = 120) -> dict:  # type: ignore[no-untyped-def,type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = httpx.get(f"{server.url}/source/{task_id}").json()
        if predicate(task):
            return task  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"timed out; last state {task}")


def _ledger(server: Server, task_id: str) -> list[tuple[str, int]]:
    with sqlite3.connect(server.data_dir / "reelgate.db") as db:
        return db.execute("SELECT kind, amount FROM ledger WHERE task_id = ?", (task_id,)).fetchall()


def test_sigkill_mid_render_then_restart(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(MEDIUM, lease_seconds="2")
    key = server.create_key("5")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    stream = client.chat.completions.create(
        model="sora-2-hd-15s-chat", messages=[{"role": "user", "content": "雪山下的红色火车"}], stream=True
    )
    first = next(iter(stream)).choices[0].delta.content or ""
    task_id = first.split("ID: `")[1].split("`")[0] if "ID: `" in first else None
    if task_id is None:
        task_id = next(c.choices[0].delta.content for c in stream if "ID: `" in (c.choices[0].delta.content or ""))
        task_id = task_id.split("ID: `")[1].split("`")[0]
    _wait_for(server, task_id, lambda t: t["status"] == "in_progress" and t["progress"] >= 10)

    server.kill()
    stream.close()
    server.start()

    task = _wait_for(server, task_id, lambda t: t["status"] in ("completed", "failed"))
    assert task["status"] == "completed", task
    assert httpx.get(task["video_url"]).status_code == 200
    assert _ledger(server, task_id) == [("charge", -1_000_000)]
    balances = server.cli("keys", "list").split()
    assert "4" in balances


def test_refund_survives_kills_around_the_failure(make_server) -> None:  # type: ignore[no-untyped-def]
    """Refund policy on, one attempt: the restart fails the task and refunds it; more kills change nothing."""
    server: Server = make_server(MEDIUM, lease_seconds="2", max_attempts="1", charge_on_failure="false")
    key = server.create_key("5")
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": key},
        json={"model": "sora-2-hd-15s-chat", "stream": True, "messages": [{"role": "user", "content": "海边的灯塔"}]},
        timeout=60,
    ) as response:
        lines = response.iter_lines()
        task_id = next(line.split("ID: `")[1].split("`")[0] for line in lines if "ID: `" in line)
        _wait_for(server, task_id, lambda t: t["status"] == "in_progress" and t["progress"] >= 10)
        server.kill()

    server.start()
    task = _wait_for(server, task_id, lambda t: t["status"] == "failed")
    assert task["error"]["code"] == "worker_lost", task
    assert _ledger(server, task_id) == [("charge", -1_000_000), ("refund", 1_000_000)]

    for _ in range(2):  # killed again right after the failure, recovery runs again on each start
        server.kill()
        server.start()
        time.sleep(2.5)
    assert _ledger(server, task_id) == [("charge", -1_000_000), ("refund", 1_000_000)]
    assert "ok" in server.cli("ledger", "verify").lower()


def test_openai_package_stream_and_non_stream(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(SMALL)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key("3"), max_retries=0)

    chunks = list(
        client.chat.completions.create(
            model="sora-2-hd-10s-chat",
            messages=[{"role": "user", "content": "A red kite over the sea, 16:9"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "sora-2-hd-10s-chat" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert '"orientation": "landscape"' in text and "生成完成 ✅" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

    completion = client.chat.completions.create(
        model="sora-2-hd-15s-chat", messages=[{"role": "user", "content": "竖屏：雨夜的霓虹街头"}]
    )
    message = completion.choices[0].message.content or ""
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    assert message.startswith("```json") and "生成完成 ✅" in message and "[在线播放▶️](" in message

    models = client.models.list()
    assert {m.id for m in models} >= {"sora-2-hd-15s-chat", "sora-2-hd-10s-chat", "sora-2", "sora-2-pro"}

    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(3):
            client.chat.completions.create(model="sora-2-hd-15s-chat", messages=[{"role": "user", "content": "猫"}])
    assert info.value.code == "insufficient_quota"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="sora-3", messages=[{"role": "user", "content": "猫"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-nope", max_retries=0).models.list()
