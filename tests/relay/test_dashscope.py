"""The `dashscope` relay (Wan on Model Studio) over its real path, scenario by scenario."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.dashscope_fake import INSPECTION, DashScopeUpstream
from tests.relay.fakes import KEY, Script
from tests.relay.servers import serving

MODEL = "wan-video"


def wan_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("dashscope:wan", model="wan2.5-t2v-preview", seconds={4: 5}, parameters={"audio": True})
    return relay_settings(tmp_path, {"wan": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = DashScopeUpstream(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(wan_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "model": "wan2.5-t2v-preview",
            "input": {"prompt": "海边的红色灯塔"},
            "parameters": {"duration": 5, "size": "64*112", "audio": True},
        }
    ]
    assert fake.counts.authorizations[-1] == "(none on OSS)"  # the result link on another host gets no key
    assert set(fake.counts.authorizations[:-1]) == {f"Bearer {KEY}"}


async def test_image_to_video_sends_a_data_uri_and_a_tier(tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = DashScopeUpstream(media)
    with serving(fake) as up:
        async with live_server(wan_settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            reply = await chat(server.url, key, MODEL, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    assert sent["parameters"] == {"duration": 5, "resolution": "480P", "audio": True}
    assert sent["input"]["img_url"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(sent["input"]["img_url"].split(",", 1)[1]))) as image:
        assert image.format == "PNG"


async def test_data_inspection_is_a_content_policy_violation(tmp_path: Path, media: Path) -> None:
    fake = DashScopeUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(wan_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"] == {"code": "content_policy_violation", "message": INSPECTION}
