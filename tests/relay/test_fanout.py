"""Many clients watching one relayed task cause one upstream poll loop, not one each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import live_server
from tests.relay.conftest import chat, relay_settings, relayed, source, upstream
from tests.relay.fakes import Script, VideosUpstream
from tests.relay.servers import serving

PROGRESS = (0, *range(3, 100, 3))


async def test_fifty_watchers_one_poll_loop(tmp_path: Path, media: Path) -> None:
    # The job runs until every chat stream is watching it (so each joins it rather than making its own).
    fake = VideosUpstream(media, Script(progress=PROGRESS, outcome="never"))
    with serving(fake) as up:
        settings = relay_settings(tmp_path, {"acme": upstream(up.url)}, {"m": relayed("openai-videos:acme")})
        async with live_server(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            key = await server.create_key()
            auth = {"Authorization": f"Bearer {key}"}
            began = time.monotonic()
            opener = asyncio.create_task(chat(server.url, key, "m"))
            task_id = await _first_video(client, auth)
            # 20 chat streams of one request (re-sends join the running task), 15 Videos API pollers,
            # 15 watchers of /web and /source: 50 clients.
            chats = asyncio.gather(opener, *(chat(server.url, key, "m") for _ in range(19)))
            others = asyncio.gather(
                *(_poll_api(client, auth, task_id) for _ in range(15)),
                *(_watch_page(client, task_id) for _ in range(15)),
            )
            await _until(lambda: server.app.state.runtime.bus.listener_count >= 20)
            fake.script.outcome = "completed"
            replies, statuses = await asyncio.gather(chats, others)
            elapsed = time.monotonic() - began
            task = await source(server.url, task_id)
    assert len(replies) == 20 and {reply.task_id for reply in replies} == {task_id}
    assert all("生成完成 ✅" in reply.text for reply in replies)
    assert statuses == ["completed"] * 30 and task["status"] == "completed"
    assert fake.counts.accepted == 1
    assert fake.counts.max_polls_in_flight == 1
    # One loop: a poll per step of the job, then (stalled) at most one per max_poll_interval (0.15 s,
    # less 10% jitter), whatever the number of watchers.
    assert fake.counts.polls <= len(PROGRESS) + 6 + elapsed / 0.135, (fake.counts.polls, elapsed)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def _first_video(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    for _ in range(1000):
        listed = (await client.get("/v1/videos", headers=auth)).json()["data"]
        if listed:
            return str(listed[0]["id"])
        await asyncio.sleep(0.01)
    raise AssertionError("the first request made no task")


async def _poll_api(client: httpx.AsyncClient, auth: dict[str, str], task_id: str) -> str:
    while True:
        video = (await client.get(f"/v1/videos/{task_id}", headers=auth)).json()
        if video["status"] in ("completed", "failed"):
            return str(video["status"])
        await asyncio.sleep(0.1)


async def _watch_page(client: httpx.AsyncClient, task_id: str) -> str:
    assert (await client.get(f"/web/{task_id}")).status_code == 200
    while True:
        task = (await client.get(f"/source/{task_id}")).json()
        if task["status"] in ("completed", "failed"):
            return str(task["status"])
        await asyncio.sleep(0.1)
