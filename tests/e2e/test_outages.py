"""Faults of the server's own against a real `reelgate serve`.

On PostgreSQL, the database goes away mid-render and comes back (a TCP proxy in between is taken down):
streams end well-formed, new requests get 503 + Retry-After, the tasks finish once the database is back,
and each is charged exactly once. On SQLite, the disk fills up mid-render: the task fails and is refunded.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import Server, server_env
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

#: Big enough that a render takes a few seconds, so the outage lands mid-render.
MEDIUM = {"sora-2-hd-15s-chat": {"portrait": "288x512", "fps": 24}}
BODY = {"model": "sora-2-hd-15s-chat", "stream": True}
#: Runs the server with files limited to 400 KiB: a 288x512 video does not fit.
FILE_SIZE_LIMIT = ["bash", "-c", 'ulimit -f 400; exec "$@"', "-"]


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy(make_url(postgres_url).port or 5432)
    proxy.up()
    yield proxy
    proxy.close()


def _open_stream(client: httpx.Client, server: Server, key: str, prompt: str) -> tuple[Any, Any, str]:
    """A chat stream read up to its ID line: (context, line iterator, task id)."""
    body = {**BODY, "messages": [{"role": "user", "content": prompt}]}
    context = client.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key})
    response = context.__enter__()
    assert response.status_code == 200, response.read()
    lines = response.iter_lines()
    text = ""
    while "ID: `" not in text:
        line = next(lines)
        if line.startswith("data: {"):
            text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
    return context, lines, re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]


def _rest(lines: Any) -> tuple[str, list[str]]:
    rest = [line for line in lines if line]
    assert all(line.startswith("data: ") for line in rest), rest
    assert rest[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in rest[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks), rest


def _wait(server: Server, task_id: str, status: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/source/{task_id}", timeout=10)
        if response.status_code == 200:
            task = response.json()
            if task["status"] == status:
                return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} never became {status}: {task}\n{server.output()[-3000:]}")


def _wait_for_log(server: Server, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.1)


async def _ledger(url: str) -> list[tuple[str, str, int]]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        rows = await conn.fetch("SELECT task_id, kind, amount FROM ledger WHERE task_id IS NOT NULL ORDER BY id")
    finally:
        await conn.close()
    return [(row["task_id"], row["kind"], row["amount"]) for row in rows]


@pytest.mark.postgres
def test_database_outage_mid_render(make_server, proxy: TcpProxy, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    through_proxy = make_url(postgres_url).set(port=proxy.port).render_as_string(hide_password=False)
    server: Server = make_server(MEDIUM, database_url=through_proxy, keepalive_seconds="1")
    key = server.create_key("10")
    with httpx.Client(timeout=60) as client:
        rendering = _open_stream(client, server, key, "雪山下的红色火车")
        waiting = _open_stream(client, server, key, "海边的灯塔")  # queued behind it: one worker slot
        _wait(server, rendering[2], "in_progress")

        proxy.down()
        endings = [_rest(stream[1]) for stream in (rendering, waiting)]
        for stream in (rendering, waiting):
            stream[0].__exit__(None, None, None)
        ready = client.get(f"{server.url}/readyz")
        refused = client.post(
            f"{server.url}/v1/chat/completions",
            json={**BODY, "messages": [{"role": "user", "content": "一只猫"}]},
            headers={"Authorization": key},
        )
        alive = client.get(f"{server.url}/healthz")
        _wait_for_log(server, "recording the task's outcome again")  # the render ended during the outage
        proxy.up()

    for (text, _), (_, _, task_id) in zip(endings, (rendering, waiting), strict=True):
        assert "任务仍在生成中" in text and f"[原始数据]({server.url}/source/{task_id})" in text, text
    for response in (ready, refused):
        assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
        assert int(response.headers["retry-after"]) > 0
    assert alive.status_code == 200
    for task_id in (rendering[2], waiting[2]):
        assert httpx.get(_wait(server, task_id, "completed")["video_url"]).status_code == 200
    assert "ledger ok" in server.cli("ledger", "verify")
    charges = asyncio.run(_ledger(postgres_url))
    assert sorted(charges) == sorted([(rendering[2], "charge", -1_000_000), (waiting[2], "charge", -1_000_000)])


@pytest.mark.postgres
def test_disk_full_mid_render(tmp_path, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    """A real process whose files may not grow past 400 KiB (`ulimit -f`: writes fail with EFBIG, as on a
    full disk; the database is PostgreSQL's, elsewhere): the task fails `storage_full`, is refunded, and
    no partial file remains."""
    env = server_env(tmp_path, MEDIUM, database_url=postgres_url)
    server = Server(tmp_path / "data", env, wrapper=FILE_SIZE_LIMIT)
    server.start()
    try:
        key = server.create_key("10")
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={**BODY, "stream": False, "messages": [{"role": "user", "content": "雪山下的红色火车"}]},
            headers={"Authorization": key},
            timeout=120,
        )
        assert "生成失败 ❌" in reply.json()["choices"][0]["message"]["content"]
        task_id = re.search(r"ID: `(task_\w+)`", reply.json()["choices"][0]["message"]["content"]).group(1)  # type: ignore[union-attr]
        assert _wait(server, task_id, "failed")["error"]["code"] == "storage_full"
        assert "ledger ok" in server.cli("ledger", "verify")
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert " 10 " in server.cli("keys", "list")  # refunded: the balance it was created with
    finally:
        server.stop()
    leftovers = [p for p in (server.data_dir / "media").rglob("*") if p.is_file()]
    assert leftovers == [] and not any((server.data_dir / "work").iterdir())
