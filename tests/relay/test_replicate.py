"""The `replicate` relay (any video model on Replicate) over its real path, scenario by scenario."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import KEY, Script
from tests.relay.replicate_fake import NSFW, ReplicateUpstream
from tests.relay.servers import serving

MODEL = "replicated-video"


def replicate_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "replicate:replicate",
        model="kwaivgi/kling-v2.1",
        seconds={4: 5},
        parameters={
            "prompt": "{prompt}",
            "duration": "{seconds}",
            "aspect_ratio": "{ratio}",
            "start_image": "{image}",
            "mode": "standard",
        },
    )
    return relay_settings(tmp_path, {"replicate": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = ReplicateUpstream(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(replicate_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "model": "kwaivgi/kling-v2.1",
            "input": {"prompt": "海边的红色灯塔", "duration": 5, "aspect_ratio": "9:16", "mode": "standard"},
        }
    ]
    assert fake.counts.authorizations[-1] == "(none on delivery)"  # the result link on another host gets no key
    assert set(fake.counts.authorizations[:-1]) == {f"Bearer {KEY}"}


async def test_image_to_video_sends_the_start_image(tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = ReplicateUpstream(media)
    with serving(fake) as up:
        async with live_server(replicate_settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            reply = await chat(server.url, key, MODEL, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    assert sent["input"]["prompt"] == "让画面动起来" and sent["input"]["duration"] == 5
    assert sent["input"]["start_image"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(sent["input"]["start_image"].split(",", 1)[1]))) as image:
        assert image.format == "PNG"


async def test_a_safety_checker_failure_is_a_content_policy_violation(tmp_path: Path, media: Path) -> None:
    fake = ReplicateUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(replicate_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"] == {"code": "content_policy_violation", "message": NSFW}
