"""The scenarios every task-id upstream (relay/task_api.py) must pass, run once per provider.

Each provider's own file keeps what differs (its request bodies, its moderation words, its start-up
checks); the table below names, per provider, its fake, its catalog settings and its bad-key words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import live_server
from tests.relay.ark_fake import ArkUpstream
from tests.relay.conftest import KEY_ENV, chat, source
from tests.relay.dashscope_fake import DashScopeUpstream
from tests.relay.fakes import KEY, FakeUpstream, Fault, Script
from tests.relay.fal_fake import FalUpstream
from tests.relay.kling_fake import ACCESS, SECRET, KlingUpstream
from tests.relay.minimax_fake import MiniMaxUpstream
from tests.relay.replicate_fake import ReplicateUpstream
from tests.relay.servers import serving
from tests.relay.test_ark import ark_settings
from tests.relay.test_dashscope import wan_settings
from tests.relay.test_fal import fal_settings
from tests.relay.test_kling import KEYS_ENV, kling_settings
from tests.relay.test_minimax import hailuo_settings
from tests.relay.test_replicate import replicate_settings
from tests.relay.test_veo import veo_settings
from tests.relay.veo_fake import VeoUpstream


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


PROVIDERS = [
    Provider(
        "veo",
        VeoUpstream,
        veo_settings,
        "veo-video",
        wrong_key="AIza-wrong-key-0123456789",
        refusal="API key not valid",
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
    ),
    Provider(
        "dashscope",
        DashScopeUpstream,
        wan_settings,
        "wan-video",
        wrong_key="sk-wrong-dashscope-0123456789",
        refusal="Invalid API-key",
    ),
    Provider(
        "ark",
        ArkUpstream,
        ark_settings,
        "seedance-video",
        wrong_key="sk-wrong-ark-0123456789",
        refusal="missing or invalid",
    ),
    Provider(
        "minimax",
        MiniMaxUpstream,
        hailuo_settings,
        "hailuo-video",
        wrong_key="sk-wrong-minimax-0123456789",
        refusal="login fail",
    ),
    Provider(
        "replicate",
        ReplicateUpstream,
        replicate_settings,
        "replicated-video",
        wrong_key="r8_wrong-0123456789-0123456789",
        refusal="valid authentication token",
    ),
    Provider(
        "fal",
        FalUpstream,
        fal_settings,
        "fal-video",
        wrong_key="fal-wrong-key-0123456789",
        refusal="Authentication is required",
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
            task = await source(server.url, (await chat(server.url, await server.create_key(), provider.model)).task_id)
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
            task = await source(server.url, (await chat(server.url, await server.create_key(), provider.model)).task_id)
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
