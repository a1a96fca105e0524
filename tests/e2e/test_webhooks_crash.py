"""A webhook delivery survives a SIGKILL between the task's end and the send."""

from __future__ import annotations

import sqlite3
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import Server
from tests.webhook_receiver import receiver_thread

pytestmark = pytest.mark.e2e

TINY = {"sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 6}}


def _deliveries(server: Server) -> list[tuple[str, str, int]]:
    with sqlite3.connect(server.data_dir / "reelgate.db") as db:
        return db.execute("SELECT id, state, attempts FROM webhook_deliveries").fetchall()


def test_sigkill_before_the_send_still_delivers_after_restart(make_server) -> None:  # type: ignore[no-untyped-def]
    # The first process looks for due deliveries only at its start: the kill lands before any send.
    server: Server = make_server(TINY, image_fetch_allow='["127.0.0.1/32"]', webhook_poll_seconds="3600")
    key = server.create_key("5")
    with receiver_thread() as hook:
        answer = httpx.post(f"{server.url}/v1/webhooks", json={"url": hook.url}, headers={"Authorization": key})
        secret = answer.json()["secret"]
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        video = client.videos.create_and_poll(prompt="灯塔", seconds="4", size="256x144", poll_interval_ms=100)
        assert video.status == "completed"
        [(webhook_id, state, attempts)] = _deliveries(server)
        assert (state, attempts, hook.received) == ("pending", 0, [])

        server.kill()
        server.env["REELGATE_WEBHOOK_POLL_SECONDS"] = "0.1"
        server.start()

        deadline = time.monotonic() + 30
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.05)
        [got] = hook.received
        assert got.headers["webhook-id"] == webhook_id
        event = openai.OpenAI(api_key="unused", webhook_secret=secret).webhooks.unwrap(got.body, got.headers)
        assert (event.type, event.data.id) == ("video.completed", video.id)
