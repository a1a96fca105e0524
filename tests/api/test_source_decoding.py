"""An uploaded video that passes admission's probe but is hostile to a full decode (frames far larger than
the probe saw) fails its task with the reason, refunded as the failure policy says, and the worker goes on;
a character's key frames are decoded off the event loop, the same file refused with a 400."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types import Video
from PIL import Image
from sqlalchemy import select

from reelgate.inputs import videos
from reelgate.store.tables import api_keys
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings
from tests.inputs.clips import make_clip, make_giant_frames

MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 8}}


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


async def _balance(server: LiveServer) -> int:
    async with server.app.state.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(api_keys.c.balance)) or 0)


async def _send(client: openai.AsyncOpenAI, call: str, name: str, data: bytes) -> Video:
    """An edit, or a 4 s extension, of the uploaded video."""
    if call == "edit":
        return await client.videos.edit(prompt="下雪", video=(name, data, "video/mp4"))
    return await client.videos.extend(prompt="下雪", seconds="4", video=(name, data, "video/mp4"))


@pytest.mark.parametrize("call", ["edit", "extend"])
async def test_a_source_with_giant_frames_fails_refunded_and_the_next_task_completes(tmp_path: Path, call: str) -> None:
    giant = make_giant_frames(tmp_path / "giant.mov", seconds=4).read_bytes()
    good = make_clip(tmp_path / "good.mp4", seconds=4.0, width=144, height=256, fps=8).read_bytes()
    settings = make_settings(tmp_path, models=MODELS, charge_on_failure=False, worker_slots=1)
    async with live_server(settings) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            before = await _balance(server)
            hostile = await client.videos.poll((await _send(client, call, "giant.mov", giant)).id, poll_interval_ms=200)
            assert hostile.status == "failed" and hostile.error is not None
            assert "could not be decoded: a frame is 4096x4096, larger than 4096 pixels" in hostile.error.message
            assert await _balance(server) == before  # charged at admission, given back at the failure
            after = await client.videos.poll((await _send(client, call, "good.mp4", good)).id, poll_interval_ms=200)
            assert after.status == "completed"


async def test_a_characters_clip_with_giant_frames_is_a_400(tmp_path: Path) -> None:
    giant = make_giant_frames(tmp_path / "giant.mov").read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            refused = await http.post(
                "/v1/videos/characters",
                headers={"Authorization": f"Bearer {key}"},
                data={"name": "Mira"},
                files={"video": ("giant.mov", giant, "video/quicktime")},
            )
    assert_openai_error(refused, 400, "invalid_value")
    assert "'video' could not be decoded: a frame is 4096x4096" in refused.json()["error"]["message"]


async def test_healthz_answers_while_a_slow_key_frame_read_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    real = videos._key_frames_in_child

    def slow(path: Path, count: int, max_side: int, time_limit: float) -> list[Image.Image]:
        loop.call_soon_threadsafe(reading.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(60)  # held until /healthz has answered
        return real(path, count, max_side, time_limit)

    monkeypatch.setattr(videos, "_key_frames_in_child", slow)
    clip = make_clip(tmp_path / "mira.mp4", seconds=2.0, width=96, height=128).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            create = asyncio.create_task(
                http.post(
                    "/v1/videos/characters",
                    headers={"Authorization": f"Bearer {key}"},
                    data={"name": "Mira"},
                    files={"video": ("mira.mp4", clip, "video/mp4")},
                )
            )
            await asyncio.wait_for(reading.wait(), 60)
            health = await http.get("/healthz")
            assert not create.done()
            release.set()
            created = await create
    assert health.status_code == 200
    assert created.status_code == 200 and created.json()["name"] == "Mira"
