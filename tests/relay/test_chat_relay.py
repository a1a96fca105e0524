"""The `chat-relay` relay against two fake chat providers: the seed's markdown and sora2api's stream.

Same checks as the Videos API scenarios: task status, the seed-format stream reelgate sends its own
client, one upstream create, and a re-hosted MP4 that plays after the upstream stopped.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import ChatUpstream, Fault, Script, SeedChatUpstream, Sora2apiUpstream, VideosUpstream
from tests.relay.servers import serving

FLAGGED = "Your prompt was flagged by the upstream's safety system."
FLAVOURS: dict[str, type[ChatUpstream]] = {"seed": SeedChatUpstream, "sora2api": Sora2apiUpstream}


@dataclass
class Case:
    flavour: str
    script: Script
    status: str = "completed"
    code: str | None = None
    message: str | None = None
    deadline: float = 20


def _both(
    name: str, script: Script, status: str = "completed", code: str | None = None, message: str | None = None
) -> list[tuple[str, Case]]:
    return [(f"{flavour}: {name}", Case(flavour, script, status, code, message)) for flavour in FLAVOURS]


CASES = dict(
    [
        *_both("success with rising progress", Script(progress=(0, 15, 40, 65, 85))),
        ("seed: slow, progress stalls", Case("seed", Script(progress=(0, 10, 30, 30, 30, 30, 30, 30, 30, 70)))),
        *_both("upstream failure keeps its message", Script(outcome="failed"), "failed", "upstream_failed", FLAGGED),
        ("seed: 429 then success", Case("seed", Script(create_faults=[Fault(429, retry_after="0.2")]))),
        ("seed: 5xx bursts", Case("seed", Script(create_faults=[Fault(500), Fault(502), Fault(503)]))),
        *_both("malformed JSON lines", Script(poll_faults={1: Fault(malformed=True), 3: Fault(malformed=True)})),
        # The seed's stream names a raw-data link: reelgate follows the job there.
        ("seed: dropped mid-stream, followed", Case("seed", Script(poll_faults={2: Fault(drop=True)}))),
        # sora2api's names none: the job cannot be followed and is not ordered (and paid) twice.
        (
            "sora2api: dropped mid-stream, not ordered again",
            Case("sora2api", Script(poll_faults={2: Fault(drop=True)}), "failed", "upstream_lost", "not ordered again"),
        ),
        (
            "seed: never finishes, deadline",
            Case("seed", Script(outcome="never"), "failed", "upstream_timeout", "within 1", deadline=1),
        ),
        *_both("result link 404s", Script(video_status=404), "failed", "upstream_result_unavailable", "HTTP 404"),
    ]
)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_scenario(case: Case, tmp_path: Path, media: Path) -> None:
    fake = FLAVOURS[case.flavour](media, case.script)
    with serving(fake) as up:
        settings = relay_settings(
            tmp_path,
            {"provider": upstream(up.url, deadline=case.deadline)},
            {
                "relay-chat": relayed(
                    "chat-relay:provider", model={"portrait": "v-portrait", "landscape": "v-landscape"}
                )
            },
        )
        async with live_server(settings) as server:
            reply = await chat(server.url, await server.create_key(), "relay-chat")
            task = await source(server.url, reply.task_id)
            up.stop()
            assert task["status"] == case.status, task
            assert_seed_stream(reply, completed=case.status == "completed")
            if case.status == "completed":
                assert (await rehosted(server.url, task, tmp_path)).width == 64
                figures = [int(n) for n in re.findall(r"(\d+)\.\.", reply.text.split("进度", 1)[1])]
                assert figures == sorted(figures) and figures[-1] == 100
            else:
                assert case.message is not None and task["error"]["code"] == case.code, task
                assert case.message in task["error"]["message"], task
    assert fake.counts.accepted == 1
    sent = fake.counts.create_bodies[0]
    assert sent["model"] == "v-portrait" and sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "海边的红色灯塔,生成视频比例9:16"}]


async def test_the_seed_upstreams_thumbnail_is_kept_and_its_job_followed(tmp_path: Path, media: Path) -> None:
    fake = SeedChatUpstream(media, Script(poll_faults={3: Fault(drop=True)}))
    with serving(fake) as up:
        settings = relay_settings(tmp_path, {"p": upstream(up.url)}, {"m": relayed("chat-relay:p")})
        async with live_server(settings) as server:
            reply = await chat(server.url, await server.create_key(), "m", "窗外的雨,横屏")
            task = await source(server.url, reply.task_id)
            up.stop()
            assert task["status"] == "completed" and task["orientation"] == "landscape"
            async with server.app.state.runtime.engine.connect() as conn:
                from reelgate.tasks import repository as repo

                row = await repo.get_task(conn, reply.task_id)
    assert row is not None and row.backend_state is not None
    assert '"job_id":"task_fake0001"' in row.backend_state and "/source/task_fake0001" in row.backend_state
    assert fake.counts.accepted == 1 and fake.counts.polls >= 1  # followed through /source after the drop
    assert fake.counts.create_bodies[0]["messages"][0]["content"] == "窗外的雨,生成视频比例16:9"


async def test_reference_images_and_remixes_are_relayed(tmp_path: Path, media: Path) -> None:
    videos, seed = VideosUpstream(media), SeedChatUpstream(media)
    picture = io.BytesIO()
    Image.new("RGB", (120, 90), (30, 160, 90)).save(picture, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "让画面动起来"},
                {"type": "image_url", "image_url": {"url": data_uri}},
            ],
        }
    ]
    with serving(videos) as one, serving(seed) as two:
        settings = relay_settings(
            tmp_path,
            {"videos": upstream(one.url), "seed": upstream(two.url)},
            {"v": relayed("openai-videos:videos"), "c": relayed("chat-relay:seed")},
        )
        async with live_server(settings) as server:
            key = await server.create_key()
            first = await chat(server.url, key, "v", messages=with_image)
            await chat(server.url, key, "c", messages=with_image)
            remix = [
                {"role": "user", "content": "海边的红色灯塔"},
                {"role": "assistant", "content": first.text},
                {"role": "user", "content": "改成下雪的夜晚"},
            ]
            remixed = await source(server.url, (await chat(server.url, key, "v", messages=remix)).task_id)
    assert remixed["status"] == "completed" and remixed["remixed_from_video_id"] == first.task_id
    sent_image, sent_remix = videos.counts.create_bodies
    assert sent_image["input_reference"] is True and sent_image["prompt"] == "让画面动起来"  # multipart upload
    assert sent_remix["prompt"] == "让画面动起来，改成下雪的夜晚"  # a new video from the chain's prompts
    (text, image) = seed.counts.create_bodies[0]["messages"][0]["content"]
    assert text == {"type": "text", "text": "让画面动起来,生成视频比例9:16"}
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")
