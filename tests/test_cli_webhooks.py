"""`reelgate keys webhooks ...`: on the database directly and against a running server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import openai
import pytest
from click.testing import Result

from reelgate.backends.fake import FailingBackend
from tests.api.test_admin import TOKEN
from tests.conftest import live_server, make_settings
from tests.test_cli_admin import KEY_ID, Cli
from tests.webhook_receiver import receiver

ALLOW_LOOPBACK = '["127.0.0.1/32"]'


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_add_list_remove_on_the_database(cli: Cli) -> None:
    key_id, _ = cli.new_key("--balance", "1")
    refused = cli("keys", "webhooks", "add", key_id, "http://127.0.0.1:9/hook", code=1)
    assert "loopback" in refused.stderr
    added = cli("keys", "webhooks", "add", key_id, "http://127.0.0.1:9/hook", REELGATE_IMAGE_FETCH_ALLOW=ALLOW_LOOPBACK)
    endpoint_id, secret = added.stdout.split()
    assert endpoint_id.startswith("we_") and secret.startswith("whsec_")
    assert cli("keys", "webhooks", "list", key_id).stdout.split() == [
        endpoint_id,
        key_id,
        "active",
        "http://127.0.0.1:9/hook",
    ]
    assert "deleted" in cli("keys", "webhooks", "remove", endpoint_id).stdout
    assert cli("keys", "webhooks", "list", key_id).stdout == ""
    assert "No API key found" in cli("keys", "webhooks", "add", "key_nope", "https://example.com/h", code=1).stderr


def test_deliveries_come_in_pages(cli: Cli) -> None:
    """One delivery a line on stdout; where more are older, the `--after` to ask for them on stderr."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from reelgate.store.db import create_engine
    from reelgate.tasks.models import TaskStatus
    from reelgate.webhooks import store
    from tests.store.test_store import _task

    key_id, _ = cli.new_key("--balance", "1")
    cli("keys", "webhooks", "add", key_id, "http://127.0.0.1:9/hook", REELGATE_IMAGE_FETCH_ALLOW=ALLOW_LOOPBACK)

    async def ended(count: int) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{cli.data_dir.resolve() / 'reelgate.db'}")
        async with engine.begin() as conn:
            for _ in range(count):
                await store.enqueue(conn, replace(_task(key_id), status=TaskStatus.COMPLETED), datetime.now(UTC))
        await engine.dispose()

    asyncio.run(ended(3))
    first = cli("keys", "webhooks", "deliveries", "--limit", "2")
    lines = first.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("wh_") for line in lines)
    assert first.stderr.strip() == f"more: --after {lines[1].split()[0]}"
    rest = cli("keys", "webhooks", "deliveries", "--limit", "2", "--after", lines[1].split()[0])
    assert len(rest.stdout.splitlines()) == 1 and rest.stdout.split()[0] not in first.stdout
    assert "more" not in rest.stderr


async def test_deliveries_and_resend_against_a_running_server(cli: Cli, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_token=TOKEN, image_fetch_allow=["127.0.0.1/32"], webhook_poll_seconds=0.1)
    async with receiver() as hook, live_server(settings, {"procedural": FailingBackend()}) as server:

        def run(*args: str) -> Result:
            return cli(*args, "--server", server.url, "--admin-token", TOKEN)

        created = await asyncio.to_thread(run, "keys", "create", "--balance", "3")
        key_id, key = KEY_ID.search(created.stderr).group(), created.stdout.strip()  # type: ignore[union-attr]
        _, secret = (await asyncio.to_thread(run, "keys", "webhooks", "add", key_id, hook.url)).stdout.split()
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": "猫"}]}
            await http.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key})
        [first] = await hook.wait_for(1)
        event = openai.OpenAI(api_key="unused", webhook_secret=secret).webhooks.unwrap(first.body, first.headers)
        assert event.type == "video.failed"

        async def listed() -> list[str]:
            for _ in range(200):
                line = (await asyncio.to_thread(run, "keys", "webhooks", "deliveries")).stdout
                if "pending" not in line:
                    break
                await asyncio.sleep(0.05)
            return line.split()

        shown = await listed()
        assert shown[:3] == [first.headers["webhook-id"], "video.failed", "delivered"] and event.data.id in shown
        await asyncio.to_thread(run, "keys", "webhooks", "resend", shown[0])
        [_, again] = await hook.wait_for(2)
        assert again.headers["webhook-id"] == shown[0] and json.loads(again.body) == json.loads(first.body)
