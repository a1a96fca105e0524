"""A request the upstream cannot meet is refused at the API (400 naming what is possible), never charged,
never sent, never silently changed: on the Videos API and in chat alike."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from reelgate.backends.asks import Ask
from reelgate.backends.base import Orientation
from reelgate.backends.relay.makes import Makes, by_model_name, refusal
from tests.conftest import assert_openai_error, live_server
from tests.relay.conftest import relay_settings, relayed, upstream
from tests.relay.fakes import Script
from tests.relay.servers import serving
from tests.relay.test_kling import KEYS_ENV
from tests.relay.veo_fake import VeoUpstream

NOWHERE = "http://127.0.0.1:9"  # refusals happen before any upstream is asked


def _image() -> str:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    return "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()


def _settings(tmp_path: Path, url: str = NOWHERE) -> Any:
    models = {
        "kling-video": {**relayed("kling:kling", model="kling-v2-1"), "seconds": 5, "seconds_choices": [5, 10]},
        "wan-t2v": {**relayed("dashscope:wan", model="wan2.5-t2v-preview"), "seconds": 5},
        "wan-i2v": {**relayed("dashscope:wan", model="wan2.5-i2v-preview"), "seconds": 5},
        "hailuo-video": {**relayed("minimax:minimax", model="MiniMax-Hailuo-02"), "seconds": 6},
        "veo-video": {
            **relayed("veo:google", model="veo-3.0-generate-001"),
            "seconds": 8,
            "portrait": "720x1280",
            "landscape": "1280x720",
            "extra_sizes": ["480x854"],
        },
    }
    upstreams = {
        "kling": upstream(NOWHERE, api_key_env=KEYS_ENV),
        "wan": upstream(NOWHERE),
        "minimax": upstream(NOWHERE),
        "google": upstream(url, base_url=f"{url}/v1beta"),
    }
    return relay_settings(tmp_path, upstreams, models)


@pytest.fixture(autouse=True)
def _key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, "AK-test:SK-test-0123456789")


async def _refused(client: httpx.AsyncClient, base: str, key: str, path: str, body: dict[str, Any], param: str) -> str:
    response = await client.post(f"{base}{path}", headers={"Authorization": key}, json=body)
    assert_openai_error(response, 400, response.json()["error"]["code"], "invalid_request_error")
    assert response.json()["error"]["param"] == param, response.text
    message: str = response.json()["error"]["message"]
    return message


async def _balance(client: httpx.AsyncClient, base: str, key: str) -> float:
    grants = await client.get(f"{base}/v1/dashboard/billing/credit_grants", headers={"Authorization": key})
    balance: float = grants.json()["total_available"]
    return balance


async def test_refusals_name_what_is_possible_and_cost_nothing(tmp_path: Path) -> None:
    async with live_server(_settings(tmp_path)) as server, httpx.AsyncClient(timeout=10) as client:
        key = await server.create_key("10")
        url, videos, chat = server.url, "/v1/videos", "/v1/chat/completions"
        said = await _refused(
            client, url, key, videos, {"model": "kling-video", "prompt": "雪山", "seconds": "12"}, "seconds"
        )
        assert "'5' and '10'" in said
        said = await _refused(
            client,
            url,
            key,
            videos,
            {"model": "wan-t2v", "prompt": "雪山", "input_reference": {"image_url": _image()}},
            "input_reference",
        )
        assert said == "`wan-t2v` makes videos from text only; it takes no reference image."
        said = await _refused(client, url, key, videos, {"model": "wan-i2v", "prompt": "雪山"}, "input_reference")
        assert "from an image only" in said
        said = await _refused(
            client, url, key, videos, {"model": "hailuo-video", "prompt": "雪山", "size": "64x112"}, "size"
        )
        assert "landscape (16:9)" in said and "not portrait (9:16)" in said
        said = await _refused(
            client, url, key, videos, {"model": "veo-video", "prompt": "雪山", "size": "480x854"}, "size"
        )
        assert said == "`veo-video` makes 720p or 1080p videos (the shorter side 720 or 1080 pixels), not 480x854."
        hailuo_portrait = {"model": "hailuo-video", "messages": [{"role": "user", "content": "雪山,生成视频比例9:16"}]}
        said = await _refused(client, url, key, chat, hailuo_portrait, "messages")
        assert "landscape (16:9)" in said
        image_chat = [
            {
                "role": "user",
                "content": [{"type": "text", "text": "动起来"}, {"type": "image_url", "image_url": {"url": _image()}}],
            }
        ]
        said = await _refused(client, url, key, chat, {"model": "wan-t2v", "messages": image_chat}, "messages")
        assert "text only" in said
        assert await _balance(client, url, key) == 10.0  # nothing was charged
        listed = await client.get(f"{url}/v1/videos", headers={"Authorization": key})
        assert listed.json()["data"] == []  # and no task was made


async def test_what_the_upstream_makes_is_admitted_as_asked(tmp_path: Path, media: Path) -> None:
    fake = VeoUpstream(media, Script(progress=(0,)))
    with serving(fake) as up:
        async with live_server(_settings(tmp_path, up.url)) as server, httpx.AsyncClient(timeout=10) as client:
            key = await server.create_key("10")
            body = {"model": "veo-video", "prompt": "雪山", "size": "1280x720"}
            created = await client.post(f"{server.url}/v1/videos", headers={"Authorization": key}, json=body)
            assert created.status_code == 200, created.text
            assert created.json()["size"] == "1280x720"
            hailuo = {
                "model": "hailuo-video",
                "prompt": "雪山",
                "size": "112x64",
                "input_reference": {"image_url": _image()},
            }
            refused = await client.post(f"{server.url}/v1/videos", headers={"Authorization": key}, json=hailuo)
            assert refused.json()["error"]["param"] == "size"  # 112x64 is no tier Hailuo makes
            with_image = {name: value for name, value in hailuo.items() if name != "size"}
            admitted = await client.post(f"{server.url}/v1/videos", headers={"Authorization": key}, json=with_image)
            assert admitted.status_code == 200, admitted.text  # from an image, Hailuo takes the image's ratio


def test_model_names_say_what_a_model_takes_and_the_catalogs_map_is_the_operators_word() -> None:
    wan = Makes(tiers=("480p", "720p", "1080p"))
    assert by_model_name(wan, "wan2.5-i2v-preview").text is False
    assert by_model_name(wan, "wan2.5-t2v-preview").image is False
    assert by_model_name(wan, "doubao-seedance-1-0-pro-250528") == wan
    small = Ask("m", size=(64, 112))
    assert refusal(wan, small, mapped_size=False) is not None and refusal(wan, small, mapped_size=True) is None
    portrait = Ask("m", orientation=Orientation.PORTRAIT)
    assert refusal(Makes(orientations=(Orientation.LANDSCAPE,)), portrait, mapped_size=False) is not None
