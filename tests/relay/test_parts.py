"""The relay's small parts on their own: stream reading, job documents, breaker, retries, routing."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from reelgate.backends.relay.breaker import BreakerState, CircuitBreaker
from reelgate.backends.relay.chat_reading import ChatReading
from reelgate.backends.relay.documents import JobPhase, percent, phase_of, read_job
from reelgate.backends.relay.faults import UpstreamError, error_message, retry_after
from reelgate.backends.relay.jobs import JobState
from reelgate.backends.relay.polling import Pace
from reelgate.backends.relay.retry import RetryPolicy
from reelgate.backends.relay.routing import ordered
from reelgate.errors import GenerationError

SEED_REPLY = [
    '```json\n{\n  "prompt": "a failed rocket, 进度 99",\n  "orientation": "portrait",\n  "duration": 15\n}\n```\n\n',
    "> ID: `task_01k8sxz17gewz8kac074xz4crh`  \n"
    "> [数据预览](https://asyncdata.net/web/task_01k8sxz17gewz8kac074xz4crh) | "
    "[原始数据](https://asyncdata.net/source/task_01k8sxz17gewz8kac074xz4crh)  \n> 排队中.",
    "..",
    " 生成中.",
    "\n\n> 🏃 进度 42..",
    "54..67..",
    "\n\n> 生成完成 ✅  \n> sid: `s_69030aec68108191a24f05b2089bcb59`\n\n",
    "![https://filesystem.site/cdn/20251030/5aad.webp](https://filesystem.site/cdn/20251030/5aad.webp)\n"
    "[在线播放▶️](https://filesystem.site/cdn/20251030/181a.mp4)",
]


def _line(**delta: Any) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}, ensure_ascii=False)


def test_reading_the_seed_providers_stream() -> None:
    reading = ChatReading()
    progress = []
    for piece in SEED_REPLY:
        reading.feed(_line(content=piece))
        progress.append(reading.progress)
    reading.feed("data: [DONE]")
    assert reading.job_id == "task_01k8sxz17gewz8kac074xz4crh"
    assert reading.follow_url == "https://asyncdata.net/source/task_01k8sxz17gewz8kac074xz4crh"
    assert [p for p in progress if p is not None] == [42, 67, 67, 67]  # the prompt's "进度 99" is not progress
    assert reading.video_url == "https://filesystem.site/cdn/20251030/181a.mp4"
    assert reading.thumbnail_url == "https://filesystem.site/cdn/20251030/5aad.webp"
    assert reading.failure is None and reading.ended  # the prompt's "failed" is not a failure


def test_reading_a_seed_failure_and_noise() -> None:
    reading = ChatReading()
    for line in [SEED_REPLY[1], "garbage that is not JSON", 'data: {"choices": [', ": comment", ""]:
        reading.feed(_line(content=line) if line is SEED_REPLY[1] else line)
    reading.feed(_line(content="\n\n> 生成失败 ❌ 内容违规，请修改提示词"))
    assert reading.failure == "内容违规，请修改提示词" and reading.video_url is None


def test_reading_sora2apis_stream() -> None:
    reading = ChatReading()
    reading.feed(_line(reasoning_content="**Generation Process Begins**\n"))
    reading.feed(_line(reasoning_content="**Video Generation Progress**: 40% (processing)\n"))
    assert reading.progress == 40
    reading.feed(_line(reasoning_content="**Video Generation Progress**: 85% (processing)\n"))
    reading.feed(_line(content="```html\n<video src='https://cdn.example/a.mp4' controls></video>\n```"))
    assert (reading.progress, reading.video_url, reading.follow_url) == (85, "https://cdn.example/a.mp4", None)
    reading.feed(_line(output=[{"url": "https://cdn.example/b.mp4", "type": "video"}]))
    assert reading.video_url == "https://cdn.example/b.mp4"  # `output` is the surest source
    reading.feed('data: {"error": {"message": "Upstream Sora quota exhausted", "type": "server_error"}}')
    assert reading.failure == "Upstream Sora quota exhausted"


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("queued", JobPhase.QUEUED),
        ("PENDING", JobPhase.QUEUED),
        ("submitted", JobPhase.QUEUED),
        ("in_progress", JobPhase.RUNNING),
        ("Processing", JobPhase.RUNNING),
        ("running", JobPhase.RUNNING),
        ("in-progress", JobPhase.RUNNING),
        ("completed", JobPhase.COMPLETED),
        ("SUCCESS", JobPhase.COMPLETED),
        ("succeeded", JobPhase.COMPLETED),
        ("failed", JobPhase.FAILED),
        ("error", JobPhase.FAILED),
        ("cancelled", JobPhase.FAILED),
        ("canceled", JobPhase.FAILED),
        ("warming_up", JobPhase.RUNNING),  # unknown: still running, the deadline bounds it
    ],
)
def test_status_synonyms(status: str, phase: JobPhase) -> None:
    assert phase_of(status) is phase


@pytest.mark.parametrize(
    ("value", "expected"), [(42, 42), (0.5, 50), ("42%", 42), ("7", 7), (1.0, 1), (250, 100), (None, None), ("x", None)]
)
def test_progress_figures(value: object, expected: int | None) -> None:
    assert percent(value) == expected


def test_job_documents_in_their_wrappings() -> None:
    new_api = {"code": "success", "data": {"task_id": "t1", "status": "SUCCESS", "progress": "100%",
                                           "data": {"video_url": "https://x/v.mp4"}}}  # fmt: skip
    doc = read_job(new_api)
    assert (doc.phase, doc.progress, doc.id, doc.video_urls) == (JobPhase.COMPLETED, 100, "t1", ("https://x/v.mp4",))
    failed = read_job({"id": "v", "status": "failed", "error": {"code": "moderation_blocked", "message": "No."}})
    assert (failed.error_code, failed.error_message) == ("moderation_blocked", "No.")
    with pytest.raises(UpstreamError) as info:
        read_job({"id": "v"})
    assert info.value.retryable


def test_breaker_opens_probes_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10, clock=lambda: now[0])
    breaker.begin()
    breaker.failed()
    assert breaker.available()
    breaker.begin()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and not breaker.available()
    now[0] = 10
    assert breaker.state is BreakerState.HALF_OPEN and breaker.available()
    breaker.begin()
    assert not breaker.available()  # one probe at a time
    breaker.failed()
    assert breaker.state is BreakerState.OPEN  # a failed probe opens it for another cool-down
    now[0] = 20
    breaker.begin()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_retry_waits_honour_retry_after_and_back_off() -> None:
    policy = RetryPolicy(retries=3, backoff=1.0, max_wait=5, rng=random.Random(1))
    assert policy.delay(0, UpstreamError("429", retryable=True, retry_after=2.5)) == 2.5
    assert policy.delay(0, UpstreamError("429", retryable=True, retry_after=99)) == 5
    waits = [policy.delay(n, UpstreamError("503", retryable=True)) for n in range(5)]
    assert 0.5 <= waits[0] <= 1 and 2 <= waits[2] <= 4 and waits[4] <= 5
    assert retry_after("3") == 3.0 and retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None


def test_error_messages_come_from_the_body() -> None:
    assert error_message('{"error": {"message": "Quota exceeded", "code": "x"}}') == "Quota exceeded"
    assert error_message('{"detail": "Not here"}') == "Not here"
    assert error_message("<html> Bad   Gateway </html>") == "<html> Bad Gateway </html>"


def test_routes_go_by_priority_then_weight() -> None:
    class Fake:
        def __init__(self, priority: int, weight: float) -> None:
            self.priority, self.weight = priority, weight

    light, heavy, backup = Fake(0, 1), Fake(0, 3), Fake(1, 100)
    routes: Any = (light, heavy, backup)
    rng = random.Random(7)
    firsts = [ordered(routes, rng)[0] for _ in range(4000)]
    assert all(ordered(routes, rng)[-1] is backup for _ in range(50))
    assert 0.7 < sum(first is heavy for first in firsts) / len(firsts) < 0.8  # weight 3 of 4


def test_pace_follows_the_upstream_then_slows_when_nothing_moves() -> None:
    pace = Pace(base=1.0, cap=8.0, rng=random.Random(3))
    pace.advance(10, None)
    assert 0.9 <= pace.wait <= 1.1
    waits = []
    for _ in range(8):
        pace.advance(10, None)
        waits.append(pace.wait)
    assert waits == sorted(waits) or waits[-1] == pytest.approx(8, rel=0.15)
    assert waits[-1] <= 8
    pace.advance(20, 2.5)
    assert 2.5 <= pace.wait <= 2.75


def test_job_state_round_trips_and_refuses_garbage() -> None:
    state = JobState("acme", 1_800_000_000.0, "video_1", None)
    assert JobState.load(state.dump()) == state
    with pytest.raises(GenerationError) as info:
        JobState.load("{not json")
    assert info.value.code == "upstream_lost"
