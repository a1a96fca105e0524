"""Chains and extensions checked against what each upstream model can make, before anything is ordered:
shots need a model that takes an image, Veo extends with its 3.1 models only, a chained duration is not
asked of one call; and upstream refusals after the create read by the provider's own fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.backends.asks import Ask, refusal_of
from reelgate.backends.base import Orientation
from reelgate.backends.registry import make_backend
from reelgate.backends.relay.replicate import failure_code
from reelgate.backends.relay.veo import extends
from reelgate.catalog import ModelEntry
from tests.conftest import LiveServer, assert_openai_error, live_server
from tests.relay.conftest import chat, relay_settings, relayed, source, upstream
from tests.relay.fakes import FakeUpstream, Script
from tests.relay.kling_fake import ACCESS, SECRET, KlingUpstream
from tests.relay.replicate_fake import NSFW, ReplicateUpstream
from tests.relay.servers import serving
from tests.relay.test_chaining import timed_veo
from tests.relay.test_kling import KEYS_ENV, kling_settings
from tests.relay.test_replicate import replicate_settings

MODEL = "sora-2-hd-15s-chat"
NOWHERE = "http://127.0.0.1:9"  # start-up refusals happen before any upstream is asked
SIZES = {Orientation.PORTRAIT: (720, 1280), Orientation.LANDSCAPE: (1280, 720)}


def _entry(backend: str, seconds: int, options: dict[str, Any]) -> ModelEntry:
    return ModelEntry(name=MODEL, backend=backend, seconds=seconds, sizes=SIZES, fps=24, price=1, options=options)


def _start(backend: str, seconds: int, options: dict[str, Any], tmp_path: Path, **up: Any) -> Any:
    """The backend the server would build for one entry (what start-up does, or its ValueError)."""
    name = backend.partition(":")[2]
    settings = relay_settings(tmp_path, {name: upstream(NOWHERE, **up)}, {})
    return make_backend(backend, settings, [_entry(backend, seconds, options)])


@pytest.fixture(autouse=True)
def _kling_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, f"{ACCESS}:{SECRET}")


# 1. Shots after the first start from an image: a text-only upstream model cannot chain them.


@pytest.mark.parametrize(
    ("backend", "options", "named"),
    [
        ("dashscope:wan", {"model": "wan2.5-t2v-preview"}, "wan2.5-t2v-preview"),
        ("ark:ark", {"model": {"portrait": "doubao-seedance-1-0-lite-t2v-250428", "landscape": "x-i2v"}}, "lite-t2v"),
        ("replicate:rep", {"model": "acme/t2v", "parameters": {"prompt": "{prompt}"}}, "acme/t2v"),
    ],
)
def test_shots_on_a_text_only_model_stop_the_server_naming_the_entry(
    backend: str, options: dict[str, Any], named: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=rf"model '{MODEL}': options.chain = 'shots' .*{named}.* text only"):
        _start(backend, 15, {**options, "chain": "shots"}, tmp_path)


def test_shots_on_models_that_take_an_image_start(tmp_path: Path) -> None:
    assert _start("kling:kling", 15, {"model": "kling-v2-1", "chain": "shots"}, tmp_path, api_key_env=KEYS_ENV)
    template = {"prompt": "{prompt}", "start_image": "{image}"}
    assert _start("replicate:rep", 15, {"model": "acme/video", "parameters": template, "chain": "shots"}, tmp_path)


# 2. A duration met by chaining is not asked of one call; one a plain entry's call cannot make is a 400.


def test_the_backend_refuses_only_durations_no_call_or_chain_makes(tmp_path: Path) -> None:
    plain = _start("veo:google", 8, {"model": "veo-3.1-generate-preview"}, tmp_path)
    refused = refusal_of(plain, Ask(MODEL, seconds=12))
    assert refused is not None and refused.part == "seconds"
    assert refused.message == f"`{MODEL}` makes 4, 6 or 8 second videos in one call, not 12."
    assert refusal_of(plain, Ask(MODEL, seconds=6)) is None
    chained = _start("veo:google", 15, {"model": "veo-3.1-generate-preview", "chain": "extend"}, tmp_path)
    assert refusal_of(chained, Ask(MODEL, seconds=15)) is None and refusal_of(chained, Ask(MODEL, seconds=12)) is None
    mapped = _start("veo:google", 8, {"model": "veo-3.1-generate-preview", "seconds": {8: 6}}, tmp_path)
    assert refusal_of(mapped, Ask(MODEL, seconds=8)) is None  # asked of the call as 6 s, which it makes


async def test_a_chained_entry_is_admitted_on_both_surfaces_and_a_plain_one_refuses_what_it_cannot_make(
    tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        models = {
            MODEL: {**relayed("veo:google", model="veo-3.1-generate-preview", chain="extend"), "seconds": 15},
            "veo-8s": {**relayed("veo:google", model="veo-3.1-generate-preview"), "seconds": 8},
        }
        models["veo-8s"]["seconds_choices"] = [4, 6, 8]
        settings = relay_settings(tmp_path, {"google": upstream(up.url, base_url=f"{up.url}/v1beta")}, models)
        async with live_server(settings) as server, httpx.AsyncClient(timeout=10) as client:
            key = await server.create_key("10")
            headers = {"Authorization": key}
            body = {"model": MODEL, "prompt": "雪山", "seconds": "15"}
            admitted = await client.post(f"{server.url}/v1/videos", headers=headers, json=body)
            assert admitted.status_code == 200, admitted.text
            assert admitted.json()["seconds"] == "15"
            reply = await chat(server.url, key, MODEL)
            assert (await source(server.url, reply.task_id))["status"] in ("queued", "in_progress", "completed")
            before = await _balance(server, key)
            body = {"model": "veo-8s", "prompt": "雪山", "seconds": "12"}
            refused = await client.post(f"{server.url}/v1/videos", headers=headers, json=body)
            assert await _balance(server, key) == before  # nothing charged
    assert_openai_error(refused, 400, refused.json()["error"]["code"], "invalid_request_error")
    error = refused.json()["error"]
    assert error["param"] == "seconds" and "'4', '6' and '8'" in error["message"], error
    assert all(each["model"] == "veo-3.1-generate-preview" for each in fake.counts.create_bodies)


# 3. Veo extends with its 3.1 models only.


def test_extend_on_a_veo_model_without_extensions_stops_the_server_naming_it(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=rf"model '{MODEL}': options.chain = 'extend': the upstream model `veo-3.0-generate-001` at "
        r"`google` has no extension call \(Veo extends videos with its 3.1 models only\)",
    ):
        _start("veo:google", 15, {"model": "veo-3.0-generate-001", "chain": "extend"}, tmp_path)
    assert extends("veo-3.1-fast-generate-preview") and extends("models/veo-3.1-generate-001")
    assert not extends("veo-3.0-fast-generate-001") and not extends("veo-2.0-generate-001")


async def test_an_extension_on_a_veo_model_without_one_is_a_400_naming_it_before_any_call(
    tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        models = {"veo-3": {**relayed("veo:google", model="veo-3.0-generate-001"), "seconds": 8}}
        settings = relay_settings(tmp_path, {"google": upstream(up.url, base_url=f"{up.url}/v1beta")}, models)
        async with live_server(settings) as server, httpx.AsyncClient(timeout=10) as client:
            key = await server.create_key("10")
            first = await chat(server.url, key, "veo-3")
            made = await source(server.url, first.task_id)
            assert made["status"] == "completed", made
            before = await _balance(server, key)
            body = {"prompt": "the storm comes", "seconds": "8", "video": {"id": made["id"]}}
            refused = await client.post(f"{server.url}/v1/videos/extensions", headers={"Authorization": key}, json=body)
            turns = [
                {"role": "user", "content": "海边的红色灯塔,生成视频比例9:16"},
                {"role": "assistant", "content": first.text},
                {"role": "user", "content": "延长 8 秒"},
            ]
            in_chat = await client.post(
                f"{server.url}/v1/chat/completions",
                headers={"Authorization": key},
                json={"model": "veo-3", "stream": True, "messages": turns},
            )
            assert await _balance(server, key) == before  # nothing charged
            listed = await client.get(f"{server.url}/v1/videos", headers={"Authorization": key})
    why = (
        "the upstream model `veo-3.0-generate-001` at `google` has no extension call "
        "(Veo extends videos with its 3.1 models only)."
    )
    for answer, param in ((refused, "video"), (in_chat, "messages")):
        assert_openai_error(answer, 400, answer.json()["error"]["code"], "invalid_request_error")
        error = answer.json()["error"]
        assert error["param"] == param and error["message"] == f"The model `veo-3` cannot extend this video: {why}"
    assert len(listed.json()["data"]) == 1  # no task for either extension
    assert fake.counts.creates == 1 and fake.extensions == []  # nothing was asked of Veo


# 4. Refusals after the create, read by the provider's own fields (words only where it gives no code).

LATER = [
    # Kling's content codes in the task's answer, whatever its words.
    ("kling", "任务失败", 1301, "content_policy_violation"),
    # No code: the words of Kling's risk control in task_status_msg.
    ("kling", "Failure to pass the risk control system", 0, "content_policy_violation"),
    ("kling", "Internal error, please try again later", 0, "upstream_failed"),
    # Replicate's own error codes are never a safety refusal, whatever else the text says.
    ("replicate", "Prediction failed to start in time (E6716)", None, "upstream_timeout"),
    ("replicate", "Model ran out of memory on a flagged input (E1001)", None, "upstream_failed"),
    ("replicate", NSFW, None, "content_policy_violation"),  # no code of Replicate's: the checker's words
]


@pytest.mark.parametrize(("kind", "message", "code", "expected"), LATER)
async def test_a_job_failed_after_its_create_is_read_by_the_providers_own_fields(
    kind: str, message: str, code: int | None, expected: str, tmp_path: Path, media: Path
) -> None:
    fake: FakeUpstream
    if kind == "kling":
        fake = KlingUpstream(media, Script(outcome="failed"))
        fake.task_failure, fake.task_failure_code = message, code or 0
        settings, model = kling_settings, "kling-video"
    else:
        fake = ReplicateUpstream(media, Script(outcome="failed"))
        fake.error = message
        settings, model = replicate_settings, "replicated-video"
    with serving(fake) as up:
        async with live_server(settings(tmp_path, up.url)) as server:
            task = await source(server.url, (await chat(server.url, await server.create_key(), model)).task_id)
    assert task["error"] == {"code": expected, "message": message}, task
    assert fake.counts.accepted == 1 and fake.counts.creates == 1 and fake.counts.downloads == 0


def test_replicate_reads_a_code_given_as_an_object_too() -> None:
    assert failure_code({"code": "E6716", "message": "timeout"}, "timeout") == "upstream_timeout"
    assert failure_code(None, "flagged as sensitive (E005)") == "content_policy_violation"  # not Replicate's


async def _balance(server: LiveServer, key: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        grants = await client.get(f"{server.url}/v1/dashboard/billing/credit_grants", headers={"Authorization": key})
    balance: float = grants.json()["total_available"]
    return balance
