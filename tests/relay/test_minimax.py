"""The `minimax` relay (Hailuo) over its real path, scenario by scenario."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import KEY, Script
from tests.relay.minimax_fake import SENSITIVE, MiniMaxUpstream
from tests.relay.servers import serving

MODEL = "hailuo-video"


def hailuo_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "minimax:minimax", model="MiniMax-Hailuo-02", seconds={4: 6}, parameters={"prompt_optimizer": False}
    )
    return relay_settings(tmp_path, {"minimax": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = MiniMaxUpstream(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(hailuo_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "model": "MiniMax-Hailuo-02",
            "prompt": "海边的红色灯塔",
            "duration": 6,
            "resolution": "768P",
            "prompt_optimizer": False,
        }
    ]
    assert fake.counts.authorizations[-1] == "(none on storage)"  # the result link on another host gets no key
    assert set(fake.counts.authorizations[:-1]) == {f"Bearer {KEY}"}


async def test_image_to_video_sends_the_first_frame(tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = MiniMaxUpstream(media)
    with serving(fake) as up:
        async with live_server(hailuo_settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            reply = await chat(server.url, key, MODEL, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    assert (sent["prompt"], sent["duration"], sent["resolution"]) == ("让画面动起来", 6, "768P")
    assert sent["first_frame_image"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(sent["first_frame_image"].split(",", 1)[1]))) as image:
        assert image.format == "PNG"


async def test_a_sensitive_prompt_is_a_content_policy_violation(tmp_path: Path, media: Path) -> None:
    fake = MiniMaxUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(hailuo_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"]["code"] == "content_policy_violation" and SENSITIVE in task["error"]["message"], task
    assert fake.counts.creates == 1 and fake.counts.accepted == 0  # a refusal is not retried
