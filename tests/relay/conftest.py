"""Relay test helpers: the media fakes serve, fast upstream settings, a chat client, the re-hosting check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from reelgate.media.encode import Mp4Writer, samples_for_frame, save_thumbnail
from reelgate.media.probe import MediaInfo, probe
from reelgate.settings import Settings
from tests.conftest import make_settings
from tests.relay.fakes import KEY

KEY_ENV = "RELAY_TEST_UPSTREAM_KEY"

#: Upstream settings that keep every scenario within a second or two.
FAST: dict[str, Any] = {
    "api_key_env": KEY_ENV,
    "poll_interval": 0.03,
    "max_poll_interval": 0.15,
    "retry_backoff": 0.02,
    "max_retry_wait": 1.5,
    "retries": 3,
    "deadline": 20,
    "connect_timeout": 2,
    "read_timeout": 5,
}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 1 s MP4 (64x112, with sound) and a WebP still, as an upstream would deliver them."""
    folder = tmp_path_factory.mktemp("upstream-media")
    fps, width, height = 8, 64, 112
    tone = (0.2 * np.sin(np.linspace(0, 2 * np.pi * 440, 48_000, dtype=np.float32)))[:, None].repeat(2, axis=1)
    with Mp4Writer(folder / "video.mp4", width, height, fps) as writer:
        for index in range(fps):
            frame = np.full((height, width, 3), (index * 30 % 255, 90, 160), dtype=np.uint8)
            writer.write(frame, tone[samples_for_frame(index, fps)])
    save_thumbnail(np.full((height, width, 3), (200, 90, 40), dtype=np.uint8), folder / "thumbnail.webp")
    return folder


@pytest.fixture(autouse=True)
def _upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def upstream(url: str, **extra: Any) -> dict[str, Any]:
    """One upstream's settings: the fake at `url`, fast timings, the key from the environment."""
    return {"base_url": f"{url}/v1", **FAST, **extra}


def relayed(backend: str, **options: Any) -> dict[str, Any]:
    """A small catalog entry relayed through `backend` (e.g. "openai-videos:acme")."""
    return {
        "backend": backend,
        "seconds": 4,
        "portrait": "64x112",
        "landscape": "112x64",
        "fps": 8,
        "price": "1",
        "options": options,
    }


def relay_settings(tmp_path: Path, upstreams: dict[str, Any], models: dict[str, Any], **extra: Any) -> Settings:
    return make_settings(tmp_path, upstreams=upstreams, models=models, **extra)


@dataclass
class Reply:
    """A chat stream as the client saw it."""

    text: str
    task_id: str
    chunks: list[dict[str, Any]]


async def chat(
    base: str, key: str, model: str, prompt: str = "海边的红色灯塔,生成视频比例9:16", messages: list[Any] | None = None
) -> Reply:
    """One streamed chat request, read to `[DONE]` the way the seed's client reads it."""
    body = {"model": model, "stream": True, "messages": messages or [{"role": "user", "content": prompt}]}
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("POST", f"{base}/v1/chat/completions", json=body, headers={"Authorization": key}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        lines = [line async for line in response.aiter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]", lines
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    found = re.search(r"ID: `(task_\w+)`", text)
    assert found, text
    return Reply(text, found.group(1), chunks)


async def source(base: str, task_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base}/source/{task_id}")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def assert_seed_stream(reply: Reply, *, completed: bool) -> None:
    """The seed's shape: JSON block, ID line with both links, then the success block or a failure line."""
    text = reply.text
    assert text.startswith("```json\n"), text
    assert re.search(r"> \[数据预览\]\(\S+/web/task_\w+\) \| \[原始数据\]\(\S+/source/task_\w+\)", text), text
    if completed:
        assert "> 生成完成 ✅" in text and re.search(r"\[在线播放▶️\]\(\S+/cdn/\d{8}/[0-9a-f]{32}\.mp4\)", text)
    else:
        assert "> 生成失败 ❌" in text and "生成完成" not in text, text
    assert reply.chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def rehosted(base: str, task: dict[str, Any], tmp_path: Path) -> MediaInfo:
    """The task's video, fetched from reelgate's /cdn/ (the upstream may be gone) and probed."""
    assert task["video_url"].startswith(f"{base}/cdn/"), task
    async with httpx.AsyncClient(timeout=10) as client:
        video = await client.get(task["video_url"])
        thumbnail = await client.get(task["thumbnail_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert thumbnail.status_code == 200 and thumbnail.content[8:12] == b"WEBP"
    path = tmp_path / f"{task['id']}.mp4"
    path.write_bytes(video.content)
    return probe(path)
