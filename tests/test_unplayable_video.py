"""A backend that hands the worker a file that is not a video: the worker probes what the backend did not
probe itself, and the task fails as the backend's failure, with nothing stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.billing.audit import verify_ledger
from reelgate.billing.keys import create_key
from reelgate.money import parse_credits
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskStatus


class BrokenFileBackend:
    """Writes bytes that no decoder reads, and says nothing of having probed them."""

    name = "procedural"

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        on_progress(100)
        video = workdir / "video.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really an mp4" * 40)
        return GeneratedVideo(video=video)


@pytest.fixture
def backends() -> dict[str, Any]:
    return {"procedural": BrokenFileBackend()}


async def test_a_file_that_is_not_a_video_fails_the_task(app_client: httpx.AsyncClient) -> None:
    engine = app_client.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        _, secret = await create_key(conn, balance=parse_credits("10"))
    created = await app_client.post(
        "/v1/videos",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "sora-2-hd-10s-chat", "prompt": "中国街头吃西瓜"},
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    for _ in range(200):
        async with engine.connect() as conn:
            task = await repo.get_task(conn, task_id)
        if task is not None and task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            break
        await asyncio.sleep(0.05)
    assert task is not None and task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.code == "generation_failed"
    assert "not a playable video" in task.error.message
    assert task.video_file is None and task.thumbnail_file is None
    async with engine.connect() as conn:
        assert await verify_ledger(conn) == []  # the charge and any refund as the model's `refund_on` says
