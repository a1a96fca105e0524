"""The `ark` relay (Seedance on Volcengine Ark) over its real path, scenario by scenario."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from reelgate.backends.relay.ark import flagged
from reelgate.backends.relay.faults import UpstreamError, moderated
from tests.conftest import live_server
from tests.relay.ark_fake import SENSITIVE, ArkUpstream
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import KEY, Script
from tests.relay.servers import serving

MODEL = "seedance-video"
SEEDANCE = "doubao-seedance-1-0-pro-250528"


def ark_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("ark:ark", model=SEEDANCE, seconds={4: 5}, parameters={"watermark": "false"})
    return relay_settings(tmp_path, {"ark": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = ArkUpstream(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(ark_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "model": SEEDANCE,
            "content": [
                {"type": "text", "text": "海边的红色灯塔 --ratio 9:16 --duration 5 --resolution 480p --watermark false"}
            ],
        }
    ]
    assert fake.counts.authorizations[-1] == "(none on TOS)"  # the result link on another host gets no key
    assert set(fake.counts.authorizations[:-1]) == {f"Bearer {KEY}"}


async def test_image_to_video_sends_the_first_frame(tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = ArkUpstream(media)
    with serving(fake) as up:
        async with live_server(ark_settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            reply = await chat(server.url, key, MODEL, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    text, image_part = sent["content"]
    assert text["text"] == "让画面动起来 --duration 5 --resolution 480p --watermark false"  # the image sets the ratio
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(image_part["image_url"]["url"].split(",", 1)[1]))) as image:
        assert image.format == "PNG"


async def test_a_sensitive_output_is_a_content_policy_violation(tmp_path: Path, media: Path) -> None:
    fake = ArkUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(ark_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"] == {"code": "content_policy_violation", "message": SENSITIVE}


def test_a_create_refused_for_sensitive_input_is_final_and_a_content_policy_violation() -> None:
    body = '{"error": {"code": "InputTextSensitiveContentDetected", "message": "sensitive"}}'
    refused = moderated(UpstreamError("HTTP 400: sensitive", retryable=False, body=body), flagged)
    assert (refused.code, refused.retryable, refused.unhealthy) == ("content_policy_violation", False, False)
    other = moderated(UpstreamError("HTTP 429", retryable=True, body='{"error": {"code": "RateLimit"}}'), flagged)
    assert (other.code, other.retryable) == (None, True)
