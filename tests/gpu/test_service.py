"""A diffusers model behind the real server: chat, progress, deletion, and a model that failed to load."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from sqlalchemy import select

from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.media.probe import probe
from reelgate.store.tables import ledger, tasks
from tests.conftest import LiveServer, assert_openai_error, live_server, make_settings
from tests.gpu.conftest import Tinting, TinyModels, options, shot_colours

MODEL = "sora-2-hd-10s-chat"


def _catalog(weights: Path, **extra: Any) -> dict[str, Any]:
    """The built-in chat model pointed at a tiny local Wan: 2 s at 8 fps, made as two shots."""
    return {
        MODEL: {
            "backend": "diffusers",
            "seconds": 2,
            "fps": 8,
            "portrait": "64x96",
            "landscape": "96x64",
            "options": options("wan", weights, **extra),
        }
    }


def _backend(server: LiveServer) -> DiffusionBackend:
    backend = server.app.state.runtime.backends["diffusers"]
    assert isinstance(backend, DiffusionBackend)
    return backend


async def _ready(client: httpx.AsyncClient, server: LiveServer) -> httpx.Response:
    for _ in range(600):
        response = await client.get(f"{server.url}/readyz")
        if response.status_code == 200 or "loading" not in response.text:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError("the backend never finished loading")


async def test_a_chat_request_gets_a_two_shot_video_with_sound(tiny_models: TinyModels, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, models=_catalog(tiny_models.folder("wan")))
    async with live_server(settings) as server, httpx.AsyncClient(timeout=120) as client:
        ready = await _ready(client, server)
        assert ready.status_code == 200 and ready.json()["checks"]["backends"] == "ok"
        backend = _backend(server)
        assert backend.loaded is not None
        backend.loaded.pipeline = Tinting(backend.loaded.pipeline)
        key = await server.create_key("10")
        body = {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "中国街头吃西瓜，然后下起了雨"}],
        }
        async with client.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}
        ) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines() if line]
        text = "".join(
            chunk["choices"][0]["delta"].get("content") or ""
            for chunk in (json.loads(line.removeprefix("data: ")) for line in lines[:-1])
            if chunk["choices"]
        )
        assert "生成完成 ✅" in text, text
        figures = [int(n) for n in re.findall(r"(\d+)\.\.", text.split("🏃 进度", 1)[1])]
        assert figures == sorted(set(figures)) and figures[-1] == 100, figures
        video_key = re.search(r"/cdn/(\d{8}/\w+\.mp4)", text).group(1)  # type: ignore[union-attr]
        path = server.app.state.runtime.storage.local_path(video_key)
    info = probe(path)
    assert (info.width, info.height, info.frames, info.fps) == (64, 96, 16, 8)
    assert info.duration == 2.0 and info.has_audio and info.audio_duration == 2.0
    with av.open(str(path)) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert shot_colours(frames) == [0] * 8 + [1] * 8


async def test_a_deleted_video_stops_between_steps(
    tiny_models: TinyModels, tmp_path: Path, release: threading.Event
) -> None:
    settings = make_settings(tmp_path, models=_catalog(tiny_models.folder("wan"), steps=40))
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        await _ready(client, server)
        transformer = _backend(server).loaded.pipeline.transformer  # type: ignore[union-attr]
        forwards: list[int] = []
        held = threading.Event()

        def hold(module: Any, args: Any) -> None:
            forwards.append(1)
            if len(forwards) == 4:
                held.set()
                release.wait(30)  # step 2 runs only once the video is deleted

        transformer.register_forward_pre_hook(hold)
        key = await server.create_key("10")
        headers = {"Authorization": f"Bearer {key}"}
        created = await client.post(
            f"{server.url}/v1/videos", json={"model": MODEL, "prompt": "a cat"}, headers=headers
        )
        video_id = created.json()["id"]
        assert await asyncio.to_thread(held.wait, 30)
        deleted = await client.delete(f"{server.url}/v1/videos/{video_id}", headers=headers)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        release.set()
        row = await _settled(server, video_id)
        assert (row.status, row.error_code) == ("failed", "cancelled")
        assert len(forwards) < 20, len(forwards)  # of 80: it stopped a few steps after the delete, not at the end
        assert (await client.get(f"{server.url}/v1/videos/{video_id}", headers=headers)).status_code == 404
        async with server.app.state.runtime.engine.connect() as conn:
            charges = (await conn.execute(select(ledger.c.amount).where(ledger.c.task_id == video_id))).all()
        assert len(charges) == 1  # charged once, as every failure is by default


async def _settled(server: LiveServer, task_id: str) -> Any:
    for _ in range(600):
        async with server.app.state.runtime.engine.connect() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one()
        if row.status in ("completed", "failed"):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"{task_id} never ended")


async def test_missing_weights_make_the_model_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "Wan2.1-T2V-1.3B-Diffusers"
    settings = make_settings(tmp_path, models=_catalog(missing))
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        ready = await _ready(client, server)
        assert_openai_error(ready, 503, "service_unavailable")
        message = ready.json()["error"]["message"]
        assert "backend diffusers: failed to load" in message and str(missing) in message
        key = await server.create_key("10")
        chat = await client.post(
            f"{server.url}/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "a cat"}]},
            headers={"Authorization": key},
        )
        assert_openai_error(chat, 503, "service_unavailable")
        assert str(missing) in chat.json()["error"]["message"]
        videos = await client.post(
            f"{server.url}/v1/videos", json={"model": MODEL, "prompt": "a cat"}, headers={"Authorization": key}
        )
        assert_openai_error(videos, 503, "service_unavailable")
        balance = await client.get(f"{server.url}/v1/dashboard/billing/balance", headers={"Authorization": key})
        assert balance.json()["balance"] == "10"
        other = await client.post(
            f"{server.url}/v1/videos", json={"model": "sora-2", "prompt": "a cat"}, headers={"Authorization": key}
        )
        assert other.status_code == 200  # the procedural models still work
        video = f"{server.url}/v1/videos/{other.json()['id']}"
        for _ in range(600):
            if (await client.get(video, headers={"Authorization": key})).json()["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the procedural video never completed")
