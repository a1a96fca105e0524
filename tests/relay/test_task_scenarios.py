"""The scenarios every task-id upstream (relay/task_api.py) must pass, run once per provider.

The table below names, per provider, its fake, its catalog settings, its key and bad-key words, and what
it must be sent: the exact create bodies of text- and image-to-video, how its requests prove who we are,
and its own words for a moderated video. Each provider's file keeps only what is its alone (start-up
checks, Veo's refund and seed-client runs, Ark's error codes).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from PIL import Image

from tests.conftest import live_server
from tests.relay import test_dashscope, test_fal
from tests.relay.ark_fake import SENSITIVE as ARK_SENSITIVE
from tests.relay.ark_fake import ArkUpstream
from tests.relay.conftest import KEY_ENV, assert_seed_stream, chat, rehosted, source
from tests.relay.dashscope_fake import INSPECTION, DashScopeUpstream
from tests.relay.fakes import KEY, FakeUpstream, Fault, Script
from tests.relay.fal_fake import REFUSED as FAL_REFUSED
from tests.relay.fal_fake import FalUpstream
from tests.relay.kling_fake import ACCESS, SECRET, KlingUpstream
from tests.relay.kling_fake import REFUSED as KLING_REFUSED
from tests.relay.minimax_fake import SENSITIVE as HAILUO_SENSITIVE
from tests.relay.minimax_fake import MiniMaxUpstream
from tests.relay.replicate_fake import NSFW, ReplicateUpstream
from tests.relay.servers import serving
from tests.relay.test_ark import SEEDANCE, ark_settings
from tests.relay.test_dashscope import wan_settings
from tests.relay.test_fal import KLING_I2V_ON_FAL, KLING_ON_FAL, fal_settings
from tests.relay.test_kling import KEYS_ENV, KLING, kling_settings
from tests.relay.test_minimax import hailuo_settings
from tests.relay.test_replicate import replicate_settings
from tests.relay.test_veo import VEO, veo_settings
from tests.relay.veo_fake import FILTERED, VeoUpstream

#: Where the image goes in an image-to-video body (see `Provider.i2v_body`).
IMAGE = "<the image>"
PROMPT = "海边的红色灯塔"


@dataclass(frozen=True)
class Provider:
    """One task-id upstream as the scenarios see it."""

    id: str
    fake: Callable[..., FakeUpstream]
    settings: Callable[..., Any]
    model: str
    #: The env variable holding the key, its good value, and a wrong one.
    key_env: str = KEY_ENV
    key: str = KEY
    wrong_key: str = ""
    #: Words of the upstream's refusal of the wrong key, shown to the user.
    refusal: str = ""
    poll_faults: dict[int, Fault] = field(default_factory=lambda: {1: Fault(500), 2: Fault(503)})
    #: Text-to-video: the chat prompt, and the create body the upstream must get.
    prompt: str = f"{PROMPT},生成视频比例9:16"
    t2v_body: dict[str, Any] = field(default_factory=dict)
    #: Image-to-video: the catalog model (where the text one takes no image), the create body with IMAGE
    #: where the image goes, that place, and the image's form there.
    i2v_model: str = ""
    i2v_body: dict[str, Any] = field(default_factory=dict)
    image_at: tuple[str | int, ...] = ()
    image_as: Literal["base64", "data_uri", "upload"] = "data_uri"
    #: How each API request proves who we are (exactly, or how it starts: Kling's JWTs are fresh), and
    #: what the fake noted at the result link: "(none on ...)" on another host, or the key Veo needs there.
    credential: str = f"Bearer {KEY}"
    credential_prefix: bool = False
    at_result: str = "(none on the CDN)"
    #: Moderation: the provider's words (all of the message, or in it), and whether the job was accepted.
    moderation: str = ""
    moderation_whole: bool = True
    moderated_job_accepted: bool = True


PROVIDERS = [
    Provider(
        "veo",
        VeoUpstream,
        veo_settings,
        "veo-video",
        wrong_key="AIza-wrong-key-0123456789",
        refusal="API key not valid",
        t2v_body={
            "model": VEO,
            "instances": [{"prompt": PROMPT}],
            "parameters": {"aspectRatio": "9:16", "resolution": "720p", "durationSeconds": 8, "negativePrompt": "blur"},
        },
        i2v_body={
            "model": VEO,
            "instances": [{"prompt": "让画面动起来", "image": {"bytesBase64Encoded": IMAGE, "mimeType": "image/png"}}],
            "parameters": {"aspectRatio": "9:16", "resolution": "720p", "durationSeconds": 8, "negativePrompt": "blur"},
        },
        image_at=("instances", 0, "image", "bytesBase64Encoded"),
        image_as="base64",
        credential=KEY,  # x-goog-api-key on create, polls and the download
        at_result=KEY,
        moderation=FILTERED,
    ),
    Provider(
        "kling",
        KlingUpstream,
        kling_settings,
        "kling-video",
        key_env=KEYS_ENV,
        key=f"{ACCESS}:{SECRET}",
        wrong_key=f"{ACCESS}:SK-wrong-secret-0123456789",
        refusal="Authentication failed",
        poll_faults={1: Fault(500), 2: Fault(502)},
        t2v_body={
            "endpoint": "text2video",
            "model_name": KLING,
            "prompt": PROMPT,
            "duration": "5",
            "aspect_ratio": "9:16",
            "mode": "pro",
        },
        i2v_body={
            "endpoint": "image2video",  # the image's own ratio: no aspect_ratio
            "model_name": KLING,
            "prompt": "让画面动起来",
            "duration": "5",
            "image": IMAGE,
            "mode": "pro",
        },
        image_at=("image",),
        image_as="base64",
        credential="Bearer ey",
        credential_prefix=True,
        moderation=KLING_REFUSED,
        moderation_whole=False,
        moderated_job_accepted=False,
    ),
    Provider(
        "dashscope",
        DashScopeUpstream,
        wan_settings,
        "wan-video",
        wrong_key="sk-wrong-dashscope-0123456789",
        refusal="Invalid API-key",
        t2v_body={
            "model": "wan2.5-t2v-preview",
            "input": {"prompt": PROMPT},
            "parameters": {"duration": 5, "size": "64*112", "audio": True},
        },
        i2v_model=test_dashscope.IMAGE_MODEL,
        i2v_body={
            "model": "wan2.5-i2v-preview",
            "input": {"prompt": "让画面动起来", "img_url": IMAGE},
            "parameters": {"duration": 5, "resolution": "480P", "audio": True},
        },
        image_at=("input", "img_url"),
        at_result="(none on OSS)",
        moderation=INSPECTION,
    ),
    Provider(
        "ark",
        ArkUpstream,
        ark_settings,
        "seedance-video",
        wrong_key="sk-wrong-ark-0123456789",
        refusal="missing or invalid",
        t2v_body={
            "model": SEEDANCE,
            "content": [
                {"type": "text", "text": f"{PROMPT} --ratio 9:16 --duration 5 --resolution 480p --watermark false"}
            ],
        },
        i2v_body={
            "model": SEEDANCE,
            "content": [  # the image sets the ratio
                {"type": "text", "text": "让画面动起来 --duration 5 --resolution 480p --watermark false"},
                {"type": "image_url", "image_url": {"url": IMAGE}},
            ],
        },
        image_at=("content", 1, "image_url", "url"),
        at_result="(none on TOS)",
        moderation=ARK_SENSITIVE,
    ),
    Provider(
        "minimax",
        MiniMaxUpstream,
        hailuo_settings,
        "hailuo-video",
        wrong_key="sk-wrong-minimax-0123456789",
        refusal="login fail",
        prompt=f"{PROMPT},生成视频比例16:9",  # from text Hailuo makes 16:9 only
        t2v_body={
            "model": "MiniMax-Hailuo-02",
            "prompt": PROMPT,
            "duration": 6,
            "resolution": "768P",
            "prompt_optimizer": False,
        },
        i2v_body={
            "model": "MiniMax-Hailuo-02",
            "prompt": "让画面动起来",
            "duration": 6,
            "resolution": "768P",
            "first_frame_image": IMAGE,
            "prompt_optimizer": False,
        },
        image_at=("first_frame_image",),
        at_result="(none on storage)",
        moderation=HAILUO_SENSITIVE,
        moderation_whole=False,
        moderated_job_accepted=False,
    ),
    Provider(
        "replicate",
        ReplicateUpstream,
        replicate_settings,
        "replicated-video",
        wrong_key="r8_wrong-0123456789-0123456789",
        refusal="valid authentication token",
        t2v_body={
            "model": "kwaivgi/kling-v2.1",
            "input": {"prompt": PROMPT, "duration": 5, "aspect_ratio": "9:16", "mode": "standard"},
        },
        i2v_body={
            "model": "kwaivgi/kling-v2.1",
            "input": {
                "prompt": "让画面动起来",
                "duration": 5,
                "aspect_ratio": "9:16",
                "start_image": IMAGE,
                "mode": "standard",
            },
        },
        image_at=("input", "start_image"),
        at_result="(none on delivery)",
        moderation=NSFW,
    ),
    Provider(
        "fal",
        FalUpstream,
        fal_settings,
        "fal-video",
        wrong_key="fal-wrong-key-0123456789",
        refusal="Authentication is required",
        t2v_body={
            "model": KLING_ON_FAL,
            "input": {"prompt": PROMPT, "duration": 5, "aspect_ratio": "9:16", "cfg_scale": 0.5},
        },
        i2v_model=test_fal.IMAGE_MODEL,
        i2v_body={"model": KLING_I2V_ON_FAL, "input": {"prompt": "让画面动起来", "duration": 5, "image_url": IMAGE}},
        image_at=("input", "image_url"),
        image_as="upload",  # to fal's CDN first, as fal's clients do
        credential=f"Key {KEY}",
        moderation=FAL_REFUSED,
        moderation_whole=False,
    ),
]


@pytest.fixture(params=PROVIDERS, ids=[p.id for p in PROVIDERS])
def provider(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Provider:
    case: Provider = request.param
    monkeypatch.setenv(case.key_env, case.key)
    return case


async def test_429_with_retry_after_and_5xx_while_polling_still_complete_once(
    provider: Provider, tmp_path: Path, media: Path
) -> None:
    script = Script(create_faults=[Fault(429, retry_after="0.3")], poll_faults=provider.poll_faults)
    fake = provider.fake(media, script)
    with serving(fake) as up:
        async with live_server(provider.settings(tmp_path, up.url)) as server:
            task = await source(
                server.url, (await chat(server.url, await server.create_key(), provider.model, provider.prompt)).task_id
            )
    assert task["status"] == "completed", task
    first, second = fake.counts.create_times[:2]
    assert second - first >= 0.29  # Retry-After honoured
    assert fake.counts.creates == 2 and fake.counts.accepted == 1


async def test_a_bad_key_is_refused_and_never_shown(
    provider: Provider, tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(provider.key_env, provider.wrong_key)
    fake = provider.fake(media)
    with serving(fake) as up:
        async with live_server(provider.settings(tmp_path, up.url)) as server:
            task = await source(
                server.url, (await chat(server.url, await server.create_key(), provider.model, provider.prompt)).task_id
            )
    assert task["status"] == "failed" and task["error"]["code"] == "upstream_refused", task
    secret = provider.wrong_key.rsplit(":", 1)[-1][:8]
    assert provider.refusal in task["error"]["message"] and secret not in task["error"]["message"]
    assert fake.counts.accepted == 0


async def test_a_restart_mid_job_resumes_the_same_job(provider: Provider, tmp_path: Path, media: Path) -> None:
    fake = provider.fake(media, Script(progress=(0,) * 40))
    with serving(fake) as up:
        settings = provider.settings(tmp_path, up.url, poll_interval=0.05, max_poll_interval=0.05)
        async with live_server(settings) as server:
            key = await server.create_key()
            async with httpx.AsyncClient(timeout=10) as client:
                created = await client.post(
                    f"{server.url}/v1/videos",
                    headers={"Authorization": key},
                    json={"model": provider.model, "prompt": "雪山"},
                )
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]
            for _ in range(500):  # until the worker is polling the job
                if fake.counts.polls >= 3:
                    break
                await asyncio.sleep(0.02)
        polls_before = fake.counts.polls
        assert polls_before >= 3
        restarted = provider.settings(tmp_path, up.url, poll_interval=0.05, max_poll_interval=0.05)  # a new process's
        async with live_server(restarted) as server, httpx.AsyncClient(timeout=10) as client:
            for _ in range(400):
                video = (await client.get(f"{server.url}/v1/videos/{video_id}", headers={"Authorization": key})).json()
                if video["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
    assert video["status"] == "completed", video
    assert fake.counts.creates == 1 and fake.counts.accepted == 1  # never a second create
    assert fake.counts.polls > polls_before and fake.counts.downloads == 1


async def test_text_to_video_completes_and_is_rehosted(
    provider: Provider, tmp_path: Path, media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = provider.fake(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(provider.settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), provider.model, provider.prompt)
            task = await source(server.url, reply.task_id)
            up.stop()  # the video is served from reelgate, not the upstream
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [provider.t2v_body]
    assert fake.counts.accepted == 1 and fake.counts.downloads == 1
    _assert_credentials(provider, fake)
    secrets = [part for part in provider.key.split(":") if len(part) >= 8]
    assert not [record for record in caplog.records if any(s in record.getMessage() for s in secrets)]


async def test_image_to_video_sends_the_image(provider: Provider, tmp_path: Path, media: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    content = [{"type": "text", "text": "让画面动起来"}, {"type": "image_url", "image_url": {"url": data_uri}}]
    fake = provider.fake(media)
    with serving(fake) as up:
        async with live_server(provider.settings(tmp_path, up.url)) as server:
            key = await server.create_key()
            model = provider.i2v_model or provider.model
            reply = await chat(server.url, key, model, messages=[{"role": "user", "content": content}])
            task = await source(server.url, reply.task_id)
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed" and info.has_audio, task
    (sent,) = fake.counts.create_bodies
    image = _take(sent, provider.image_at)
    assert sent == provider.i2v_body
    with Image.open(io.BytesIO(_image_bytes(provider, fake, image))) as opened:
        assert opened.format == "PNG"
    _assert_credentials(provider, fake)


async def test_moderation_is_a_content_policy_violation_with_the_providers_words(
    provider: Provider, tmp_path: Path, media: Path
) -> None:
    fake = provider.fake(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(provider.settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), provider.model, provider.prompt)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    error = task["error"]
    assert error["code"] == "content_policy_violation" and provider.moderation in error["message"], task
    if provider.moderation_whole:
        assert error == {"code": "content_policy_violation", "message": provider.moderation}
    assert fake.counts.creates == 1  # a refusal is not retried
    assert fake.counts.accepted == int(provider.moderated_job_accepted) and fake.counts.downloads == 0


def _assert_credentials(provider: Provider, fake: FakeUpstream) -> None:
    """The key on every API request; at the result link (and fal's upload) on another host, none."""
    *api, at_result = fake.counts.authorizations
    assert at_result == provider.at_result
    if provider.credential_prefix:
        assert all((auth or "").startswith(provider.credential) for auth in api), api
    else:
        assert set(api) == {provider.credential}
    if provider.at_result == KEY:  # Veo's file is on its API's origin, and needs the key
        assert fake.counts.elsewhere == 0
    else:
        assert fake.counts.elsewhere >= 1 and fake.counts.credentials_elsewhere == []


def _take(body: Any, path: tuple[str | int, ...]) -> Any:
    """The value at `path` in `body`, replaced there by IMAGE."""
    *parents, last = path
    for step in parents:
        body = body[step]
    value, body[last] = body[last], IMAGE
    return value


def _image_bytes(provider: Provider, fake: FakeUpstream, sent: str) -> bytes:
    if provider.image_as == "upload":
        assert isinstance(fake, FalUpstream)
        return fake.uploads[sent]
    if provider.image_as == "data_uri":
        assert sent.startswith("data:image/png;base64,"), sent[:40]
        sent = sent.split(",", 1)[1]
    return base64.b64decode(sent)
