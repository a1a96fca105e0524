"""The Videos API's `openai-poll-after-ms` follows how fast the backend's tasks have been: the SDK's `poll`
helper keeps the first hint it gets, so a video relayed from a fast upstream is fetched soon after it is
ready, not 2 s after its create."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conftest import live_server
from tests.relay.conftest import relay_settings, relayed, upstream
from tests.relay.fakes import Script, VideosUpstream
from tests.relay.servers import serving

MODEL = "relay-fast"
BODY = {"model": MODEL, "prompt": "a red lighthouse", "seconds": "4", "size": "64x112"}


async def _completed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    for _ in range(400):
        answer = await client.get(url, headers=headers)
        if answer.json()["status"] not in ("queued", "in_progress"):
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never finished")


async def test_a_fast_backend_is_polled_sooner(tmp_path: Path, media: Path) -> None:
    with serving(VideosUpstream(media, Script(progress=(0, 50)))) as up:
        settings = relay_settings(tmp_path, {"acme": upstream(up.url)}, {MODEL: relayed("openai-videos:acme")})
        async with live_server(settings) as server, httpx.AsyncClient(timeout=30) as client:
            headers = {"Authorization": f"Bearer {await server.create_key()}"}
            first = await client.post(f"{server.url}/v1/videos", json=BODY, headers=headers)
            assert first.status_code == 200 and first.headers["openai-poll-after-ms"] == "2000"  # nothing known yet
            done = await _completed(client, f"{server.url}/v1/videos/{first.json()['id']}", headers)
            assert done.json()["status"] == "completed" and "openai-poll-after-ms" not in done.headers

            second = await client.post(f"{server.url}/v1/videos", json=BODY, headers=headers)
            assert second.status_code == 200 and 250 <= int(second.headers["openai-poll-after-ms"]) < 2000
            polled = await client.get(f"{server.url}/v1/videos/{second.json()['id']}", headers=headers)
            if polled.json()["status"] in ("queued", "in_progress"):
                assert 250 <= int(polled.headers["openai-poll-after-ms"]) < 2000
            assert (await _completed(client, str(polled.url), headers)).json()["status"] == "completed"
