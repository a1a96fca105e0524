"""Failover, the circuit breaker, the concurrency cap, and keys that never leak."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from reelgate.app import create_app
from tests.conftest import live_server
from tests.relay.conftest import KEY_ENV, chat, relay_settings, relayed, source, upstream
from tests.relay.fakes import KEY, Script, VideosUpstream
from tests.relay.servers import serving


async def test_failover_when_the_first_upstream_refuses(tmp_path: Path, media: Path) -> None:
    first, second = VideosUpstream(media, Script(refuse=503)), VideosUpstream(media)
    with serving(first) as one, serving(second) as two:
        settings = relay_settings(
            tmp_path,
            {"first": upstream(one.url, retries=1), "second": upstream(two.url)},
            {"m": relayed("openai-videos", upstreams=[{"upstream": "first"}, {"upstream": "second", "priority": 1}])},
        )
        async with live_server(settings) as server:
            reply = await chat(server.url, await server.create_key(), "m")
            assert (await source(server.url, reply.task_id))["status"] == "completed"
    assert (first.counts.creates, first.counts.accepted) == (2, 0)  # asked twice (one retry), never accepted
    assert (second.counts.creates, second.counts.accepted) == (1, 1)


COOLDOWN = 6.0


async def test_breaker_opens_after_failures_and_closes_after_a_good_probe(tmp_path: Path, media: Path) -> None:
    flaky, steady = VideosUpstream(media, Script(refuse=502)), VideosUpstream(media)
    with serving(flaky) as one, serving(steady) as two:
        settings = relay_settings(
            tmp_path,
            {
                # A cool-down long enough that two videos through `steady` fit inside it on a busy CI box.
                "flaky": upstream(one.url, retries=0, breaker_failures=2, breaker_cooldown=COOLDOWN),
                "steady": upstream(two.url),
            },
            {"m": relayed("openai-videos", upstreams=[{"upstream": "flaky"}, {"upstream": "steady", "priority": 1}])},
        )
        async with live_server(settings) as server:
            key = await server.create_key("20")

            async def video() -> str:
                reply = await chat(server.url, key, "m")
                task = await source(server.url, reply.task_id)
                assert task["status"] == "completed", task
                return reply.task_id

            await video()
            await video()
            opened = time.monotonic()
            assert flaky.counts.requests == 2  # two failed creates: the circuit is open now
            await video()
            await video()
            assert flaky.counts.requests == 2  # no traffic at all during the cool-down
            assert steady.counts.accepted == 4

            flaky.script.refuse = None  # it recovers
            assert time.monotonic() - opened < COOLDOWN  # the check above really was inside the cool-down
            await asyncio.sleep(max(0.0, COOLDOWN + 0.1 - (time.monotonic() - opened)))
            await video()  # the probe: accepted, the circuit closes
            await video()  # and it takes the traffic again
    assert flaky.counts.accepted == 2 and steady.counts.accepted == 4


async def test_concurrency_cap_queues_instead_of_failing(tmp_path: Path, media: Path) -> None:
    fake = VideosUpstream(media, Script(progress=(0, 10, 20, 30, 40, 50, 60, 70)))
    with serving(fake) as up:
        settings = relay_settings(
            tmp_path,
            {"acme": upstream(up.url, max_concurrency=1)},
            {"m": relayed("openai-videos:acme")},
            worker_slots=3,
        )
        async with live_server(settings) as server:
            key = await server.create_key()
            prompts = ["山间的晨雾", "城市夜景,横屏", "沙漠里的骆驼"]
            replies = await asyncio.gather(*(chat(server.url, key, "m", prompt) for prompt in prompts))
            tasks = [await source(server.url, reply.task_id) for reply in replies]
    assert [task["status"] for task in tasks] == ["completed"] * 3
    assert fake.counts.accepted == 3 and fake.counts.max_active == 1


async def test_the_key_is_sent_only_upstream_and_never_shown(
    tmp_path: Path, media: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-the-upstream-quotes-back-42"
    (tmp_path / "wrong.key").write_text(wrong + "\n")
    (tmp_path / "right.key").write_text(KEY + "\n")
    refusing, serving_one = VideosUpstream(media), VideosUpstream(media)
    caplog.set_level(logging.DEBUG)
    with serving(refusing) as one, serving(serving_one) as two:
        routes = [{"upstream": "refusing"}, {"upstream": "good", "priority": 1}]
        settings = relay_settings(
            tmp_path,
            {
                "refusing": upstream(one.url, api_key_env=None, api_key_file=str(tmp_path / "wrong.key")),
                "good": upstream(two.url, api_key_env=None, api_key_file=str(tmp_path / "right.key")),
                "alone": upstream(one.url, api_key_env=None, api_key_file=str(tmp_path / "wrong.key")),
            },
            {"m": relayed("openai-videos", upstreams=routes), "lone": relayed("openai-videos:alone")},
        )
        async with live_server(settings) as server:
            key = await server.create_key()
            served = await source(server.url, (await chat(server.url, key, "m")).task_id)
            refused_reply = await chat(server.url, key, "lone")
            refused = await source(server.url, refused_reply.task_id)
    assert served["status"] == "completed"
    assert refused["status"] == "failed" and refused["error"]["code"] == "upstream_refused"
    assert "Incorrect API key provided" in refused["error"]["message"]
    for seen in (str(refused), refused_reply.text, caplog.text):
        assert wrong not in seen and KEY not in seen
    assert refusing.counts.authorizations[0] == f"Bearer {wrong}"
    assert serving_one.counts.authorizations == [f"Bearer {KEY}"]


@pytest.mark.parametrize(
    ("upstreams", "models", "expected"),
    [
        ({}, {"m": relayed("openai-videos:ghost")}, "upstream 'ghost' is not configured"),
        ({"acme": {"base_url": "http://127.0.0.1:9/v1"}}, {"m": relayed("chat-relay")}, "needs an upstream"),
        ({"acme": {"base_url": "ftp://x"}}, {"m": relayed("openai-videos:acme")}, "base_url must be an http(s) URL"),
        (
            {"acme": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "REELGATE_TEST_NO_SUCH_KEY"}},
            {"m": relayed("openai-videos:acme")},
            "REELGATE_TEST_NO_SUCH_KEY (api_key_env) is not set",
        ),
        (
            {"acme": {"base_url": "http://127.0.0.1:9/v1"}},
            {"m": relayed("openai-videos:acme", prompt_template="{prompt} {nope}")},
            "prompt_template",
        ),
        (
            {"acme": {"base_url": "http://127.0.0.1:9/v1"}},
            {"n": relayed("openai-videos:acme"), "m": relayed("chat-relay:acme")},
            "named by both openai-videos and chat-relay models",
        ),
    ],
    ids=["unknown upstream", "no upstream named", "bad url", "missing key variable", "bad template", "two kinds"],
)
def test_bad_relay_config_stops_the_start(
    tmp_path: Path, upstreams: dict[str, object], models: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValueError, match=r"model 'm'") as info:
        create_app(relay_settings(tmp_path, upstreams, models))
    assert expected in str(info.value)
    assert KEY_ENV not in str(info.value)
