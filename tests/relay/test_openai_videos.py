"""The `openai-videos` relay against a fake Videos API upstream, one scenario at a time.

Each scenario ends with the right task status, the seed-format stream on the client side, exactly one
upstream create, and (when completed) the MP4 served from reelgate's /cdn/ after the upstream stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import live_server
from tests.relay.conftest import assert_seed_stream, chat, rehosted, relay_settings, relayed, source, upstream
from tests.relay.fakes import Fault, Script, VideosUpstream
from tests.relay.servers import serving

MODEL = "relay-videos"
FLAGGED = "Your prompt was flagged by the upstream's safety system."


@dataclass
class Case:
    script: Script
    status: str = "completed"
    code: str | None = None
    message: str | None = None
    deadline: float = 20


CASES = {
    "success with rising progress": Case(Script(progress=(0, 20, 45, 70, 90))),
    "status synonyms": Case(Script(synonyms=True)),
    "slow: progress stalls, then completes": Case(Script(progress=(0, 10, 30, 30, 30, 30, 30, 30, 30, 60))),
    "upstream failure keeps its message": Case(Script(outcome="failed"), "failed", "content_policy_violation", FLAGGED),
    "429 then success": Case(Script(create_faults=[Fault(429, retry_after="0.3")])),
    "5xx bursts on create and poll": Case(
        Script(create_faults=[Fault(502), Fault(503)], poll_faults={1: Fault(500), 2: Fault(503), 3: Fault(502)})
    ),
    "malformed JSON": Case(Script(poll_faults={1: Fault(malformed=True), 3: Fault(malformed=True)})),
    "connection dropped mid-poll": Case(Script(poll_faults={2: Fault(drop=True), 3: Fault(drop=True)})),
    "never finishes: deadline": Case(Script(outcome="never"), "failed", "upstream_timeout", "within 1 seconds", 1.0),
    "result link 404s": Case(Script(video_status=404), "failed", "upstream_result_unavailable", "HTTP 404"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_scenario(case: Case, tmp_path: Path, media: Path) -> None:
    fake = VideosUpstream(media, case.script)
    with serving(fake) as up:
        settings = relay_settings(
            tmp_path,
            {"acme": upstream(up.url, deadline=case.deadline)},
            {MODEL: relayed("openai-videos:acme", model="sora-2", seconds={4: 8}, sizes={"portrait": "720x1280"})},
        )
        async with live_server(settings) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            task = await source(server.url, reply.task_id)
            up.stop()
            polls = fake.counts.polls
            assert task["status"] == case.status, task
            assert_seed_stream(reply, completed=case.status == "completed")
            if case.status == "completed":
                info = await rehosted(server.url, task, tmp_path)
                assert (info.width, info.height, info.has_audio) == (64, 112, True)
                figures = [int(n) for n in re.findall(r"(\d+)\.\.", reply.text.split("进度", 1)[1])]
                assert figures == sorted(figures) and figures[-1] == 100, reply.text
            else:
                assert case.message is not None and case.message in reply.text
                assert task["error"]["code"] == case.code and case.message in task["error"]["message"], task
    assert fake.counts.accepted == 1
    assert fake.counts.polls == polls  # nothing polls a finished task
    if case.script.create_faults and case.script.create_faults[0].retry_after:
        first, second = fake.counts.create_times[:2]
        assert second - first >= float(case.script.create_faults[0].retry_after) - 0.01  # Retry-After honoured
    assert fake.counts.create_bodies == [
        {"model": "sora-2", "prompt": "海边的红色灯塔", "seconds": "8", "size": "720x1280"}
    ]


async def test_polling_honours_poll_after_and_slows_down_when_stalled(tmp_path: Path, media: Path) -> None:
    stalled = VideosUpstream(media, Script(progress=(0,) + (30,) * 7))
    paced = VideosUpstream(media, Script(progress=(0, 30, 60), poll_after_ms=250))
    with serving(stalled) as one, serving(paced) as two:
        settings = relay_settings(
            tmp_path,
            {"stalled": upstream(one.url), "paced": upstream(two.url)},
            {"a": relayed("openai-videos:stalled"), "b": relayed("openai-videos:paced")},
            worker_slots=2,
        )
        async with live_server(settings) as server:
            key = await server.create_key()
            await chat(server.url, key, "a")
            await chat(server.url, key, "b")
    gaps = [b - a for a, b in zip(stalled.counts.poll_times, stalled.counts.poll_times[1:], strict=False)]
    # Nothing moved: from poll_interval (0.03 s) slower and slower up to max_poll_interval (0.15 s, less jitter).
    assert min(gaps[-2:]) >= 0.13, gaps
    paced_gaps = [b - a for a, b in zip(paced.counts.poll_times, paced.counts.poll_times[1:], strict=False)]
    assert min(paced_gaps) >= 0.24, paced_gaps  # the upstream asked for 250 ms
