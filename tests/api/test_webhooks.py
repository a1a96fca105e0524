"""Webhooks: `video.completed` / `video.failed` reach a key's endpoints, verified by the `openai` package."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import InvalidWebhookSignatureError

from reelgate.backends.fake import FailingBackend
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings
from tests.webhook_receiver import receiver

ADMIN_TOKEN = "admin-token-for-webhook-tests"
MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"fps": 6, "portrait": "144x256", "landscape": "256x144"}}
QUICK = {
    "models": MODELS,
    "image_fetch_allow": ["127.0.0.1/32"],
    "webhook_poll_seconds": 0.1,
    "webhook_retry_seconds": [0.2, 0.2, 0.2],
    "admin_token": ADMIN_TOKEN,
}


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)


async def _subscribe(server: LiveServer, key: str, url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{server.url}/v1/webhooks", json={"url": url}, headers={"Authorization": key})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _admin(server: LiveServer, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.request(method, f"{server.url}/admin{path}", headers={"Authorization": ADMIN_TOKEN})


async def _settled(server: LiveServer) -> dict[str, Any]:
    """The only delivery, once the sender has recorded its last attempt."""
    async with asyncio.timeout(10):
        while True:
            [delivery] = (await _admin(server, "GET", "/webhook-deliveries")).json()["data"]
            if delivery["state"] != "pending":
                return dict(delivery)
            await asyncio.sleep(0.05)


async def test_a_completed_video_is_announced_and_verified_by_the_sdk(tmp_path: Path) -> None:
    async with receiver() as hook, live_server(make_settings(tmp_path, **QUICK)) as server:
        key = await server.create_key("10")
        endpoint = await _subscribe(server, key, hook.url)
        assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) == 6 + 44
        async with _client(server, key) as client:
            video = await client.videos.create_and_poll(
                prompt="灯塔", model="sora-2", seconds="4", size="256x144", poll_interval_ms=100
            )
            [got] = await hook.wait_for(1)
            checker = openai.AsyncOpenAI(api_key="unused", webhook_secret=endpoint["secret"])
            event = checker.webhooks.unwrap(got.body, got.headers)
            assert (event.type, event.data.id, event.object) == ("video.completed", video.id, "event")
            assert event.id.startswith("evt_") and got.headers["webhook-id"].startswith("wh_")
            checker.webhooks.verify_signature(got.body, got.headers)
            wrong = openai.AsyncOpenAI(
                api_key="unused", webhook_secret=(await _subscribe(server, key, hook.url))["secret"]
            )
            with pytest.raises(InvalidWebhookSignatureError):
                wrong.webhooks.unwrap(got.body, got.headers)
            listed = (await client.get("/webhooks", cast_to=httpx.Response)).json()["data"]
            assert [e["url"] for e in listed] == [hook.url, hook.url] and all(e["secret"] is None for e in listed)
        async with httpx.AsyncClient() as http:
            path = f"{server.url}/v1/webhooks/{endpoint['id']}"
            other = await server.create_key("10")
            assert_openai_error(await http.delete(path, headers={"Authorization": other}), 404, "not_found")
            removed = await http.delete(path, headers={"Authorization": key})
            assert removed.json()["disabled_reason"] == "deleted"


async def test_a_receiver_failing_twice_gets_the_event_three_times_with_one_id(
    tmp_path: Path, database_url: str
) -> None:
    """On SQLite and PostgreSQL: the deliveries table, its lease and the retries."""
    script: list[tuple[int, dict[str, str]]] = [(500, {}), (503, {"Retry-After": "1"}), (200, {})]
    settings = make_settings(tmp_path, database_url=database_url, **QUICK)
    async with receiver(script) as hook, live_server(settings) as server:
        key = await server.create_key("10")
        await _subscribe(server, key, hook.url)
        async with _client(server, key) as client:
            await client.videos.create_and_poll(
                prompt="猫", model="sora-2", seconds="4", size="256x144", poll_interval_ms=100
            )
        got = await hook.wait_for(3)
        assert len({r.headers["webhook-id"] for r in got}) == 1 and len({r.body for r in got}) == 1
        assert got[2].at - got[1].at >= 0.9  # Retry-After: 1 outweighs the 0.2 s schedule
        delivery = await _settled(server)
        assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("delivered", 3, 200)
        assert delivery["id"] == got[0].headers["webhook-id"] and delivery["next_attempt_at"] is None
        # The operator sends it again: a fourth request, same id and body.
        assert (await _admin(server, "POST", f"/webhook-deliveries/{delivery['id']}/resend")).status_code == 200
        again = await hook.wait_for(4)
        assert again[3].headers["webhook-id"] == delivery["id"] and again[3].body == got[0].body


async def test_a_failed_video_is_announced_and_410_disables_the_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **QUICK)
    async with receiver([(410, {})]) as hook, live_server(settings, {"procedural": FailingBackend()}) as server:
        key = await server.create_key("10")
        endpoint = await _subscribe(server, key, hook.url)
        async with _client(server, key) as client:
            video = await client.videos.create_and_poll(
                prompt="猫", model="sora-2", seconds="4", size="256x144", poll_interval_ms=100
            )
        assert video.status == "failed"
        [got] = await hook.wait_for(1)
        assert json.loads(got.body)["type"] == "video.failed" and json.loads(got.body)["data"] == {"id": video.id}
        delivery = await _settled(server)
        assert (delivery["state"], delivery["last_status"], delivery["endpoint_id"]) == ("failed", 410, endpoint["id"])
        listed = (await _admin(server, "GET", f"/keys/{endpoint['key_id']}/webhooks")).json()["data"]
        assert listed == []  # disabled, so no longer active


async def test_private_targets_are_refused_like_reference_images(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server, httpx.AsyncClient() as http:
        key = await server.create_key("10")
        for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "ftp://example.com/x"):
            answer = await http.post(f"{server.url}/v1/webhooks", json={"url": url}, headers={"Authorization": key})
            assert_openai_error(answer, 400, None)
        gone = await http.delete(f"{server.url}/v1/webhooks/we_nope", headers={"Authorization": key})
        assert_openai_error(gone, 404, "not_found")


async def test_when_the_schedule_runs_out_the_endpoint_is_disabled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{**QUICK, "webhook_retry_seconds": [0.1, 0.1]})
    always_down = [(500, {})] * 10
    async with receiver(always_down) as hook, live_server(settings, {"procedural": FailingBackend()}) as server:
        key = await server.create_key("10")
        endpoint = await _subscribe(server, key, hook.url)
        async with _client(server, key) as client:
            await client.videos.create_and_poll(
                prompt="猫", model="sora-2", seconds="4", size="256x144", poll_interval_ms=100
            )
        delivery = await _settled(server)
        assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("failed", 3, 500)
        assert len(hook.received) == 3  # the first try and one per step of the schedule, then no more
        shown = (await _admin(server, "GET", f"/keys/{endpoint['key_id']}/webhooks")).json()["data"]
        assert shown == []
        resend = await _admin(server, "POST", f"/webhook-deliveries/{delivery['id']}/resend")
        assert_openai_error(resend, 409, "conflict")
