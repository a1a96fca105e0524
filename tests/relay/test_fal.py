"""The `fal` relay (any video model on fal's queue) over its real path; the shared scenarios are in
test_task_scenarios.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import KEY, Script
from tests.relay.fal_fake import REFUSED, FalUpstream
from tests.relay.servers import serving

MODEL = "fal-video"
KLING_ON_FAL = "fal-ai/kling-video/v2.1/standard/text-to-video"


def fal_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "fal:fal",
        model=KLING_ON_FAL,
        seconds={4: 5},
        parameters={"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{ratio}", "cfg_scale": 0.5},
    )
    return relay_settings(tmp_path, {"fal": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


async def test_text_to_video_completes_and_is_rehosted(tmp_path: Path, media: Path) -> None:
    fake = FalUpstream(media, Script(progress=(0, 20)))
    with serving(fake) as up:
        async with live_server(fal_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            info = await rehosted(server.url, task, tmp_path)
    assert task["status"] == "completed", task
    assert_seed_stream(reply, completed=True)
    assert (info.width, info.height, info.has_audio) == (64, 112, True)
    assert fake.counts.create_bodies == [
        {
            "model": KLING_ON_FAL,
            "input": {"prompt": "海边的红色灯塔", "duration": 5, "aspect_ratio": "9:16", "cfg_scale": 0.5},
        }
    ]
    assert fake.counts.authorizations[-1] == "(none on the CDN)"  # the result link on another host gets no key
    assert set(fake.counts.authorizations[:-1]) == {f"Key {KEY}"}


async def test_a_refused_result_is_a_content_policy_violation(tmp_path: Path, media: Path) -> None:
    fake = FalUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        async with live_server(fal_settings(tmp_path, up.url)) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
    assert_seed_stream(reply, completed=False)
    assert task["error"]["code"] == "content_policy_violation" and REFUSED in task["error"]["message"], task
    assert fake.counts.accepted == 1 and fake.counts.downloads == 0
