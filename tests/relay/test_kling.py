"""The `kling` relay over its real path (catalog -> API -> worker -> Kling API fake -> /cdn/), scenario by scenario."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reelgate.backends.registry import make_backend
from reelgate.catalog import ModelEntry
from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import Script
from tests.relay.kling_fake import ACCESS, REFUSED, SECRET, KlingUpstream
from tests.relay.servers import serving

MODEL = "kling-video"
KLING = "kling-v2-1"
KEYS_ENV = "RELAY_TEST_KLING_KEYS"


@pytest.fixture(autouse=True)
def _key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, f"{ACCESS}:{SECRET}")


def kling_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("kling:kling", model=KLING, seconds={4: 5}, parameters={"mode": "pro"})
    kling = upstream(url, base_url=url, api_key_env=KEYS_ENV, **upstream_extra)
    return relay_settings(tmp_path, {"kling": kling}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = KlingUpstream(media, Script(progress=(0, 20, 60)))
    with serving(fake) as up:
        async with live_server(kling_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "endpoint": "text2video",
            "model_name": KLING,
            "prompt": "海边的红色灯塔",
            "duration": "5",
            "aspect_ratio": "9:16",
            "mode": "pro",
        }
    ]
    assert fake.counts.accepted == 1 and fake.counts.downloads == 1
    assert fake.counts.authorizations[-1] == "(none on the CDN)"  # the result link on another host gets no JWT
    assert all(auth.startswith("Bearer ey") for auth in fake.counts.authorizations[:-1])


async def test_image_to_video_sends_the_image(tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = KlingUpstream(media)
    with serving(fake) as up:
        async with live_server(kling_settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            reply = await chat(server.url, key, MODEL, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    assert sent["endpoint"] == "image2video" and sent["prompt"] == "让画面动起来" and "aspect_ratio" not in sent
    with Image.open(io.BytesIO(base64.b64decode(sent["image"]))) as image:
        assert image.format == "PNG"


async def test_a_content_policy_refusal_keeps_klings_message(tmp_path: Path, media: Path) -> None:
    fake = KlingUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(kling_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"]["code"] == "content_policy_violation" and REFUSED in task["error"]["message"], task
    assert fake.counts.creates == 1  # a refusal is not retried


def test_a_duration_kling_cannot_make_or_a_half_key_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = relay_settings(tmp_path, {"kling": upstream("http://127.0.0.1:9", api_key_env=KEYS_ENV)}, {})
    with pytest.raises(ValueError, match=r"model 'six': 6 s .* kling makes 5, 10 s"):
        make_backend("kling:kling", settings, [ModelEntry("six", "kling:kling", 6, {}, 8, 0)])
    monkeypatch.setenv(KEYS_ENV, "only-an-access-key")
    settings = relay_settings(tmp_path, {"kling": upstream("http://127.0.0.1:9", api_key_env=KEYS_ENV)}, {})
    with pytest.raises(ValueError, match="ACCESS_KEY:SECRET_KEY") as refused:
        make_backend("kling:kling", settings, [ModelEntry("five", "kling:kling", 5, {}, 8, 0)])
    assert "only-an-access-key" not in str(refused.value)
