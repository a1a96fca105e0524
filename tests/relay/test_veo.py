"""The `veo` relay over its real path (catalog -> API -> worker -> Gemini API fake -> /cdn/), scenario by scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.backends.registry import make_backend
from reelgate.catalog import ModelEntry
from tests.conftest import live_server
from tests.e2e.conftest import Server, server_env
from tests.e2e.test_seed_client import run_seed_client
from tests.relay.conftest import chat, relay_settings, relayed, source, upstream
from tests.relay.fakes import Script
from tests.relay.servers import serving
from tests.relay.veo_fake import VeoUpstream

MODEL = "veo-video"
VEO = "veo-3.0-generate-001"


def veo_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("veo:google", model=VEO, seconds={4: 8}, parameters={"negativePrompt": "blur"})
    google = upstream(url, base_url=f"{url}/v1beta", **upstream_extra)
    return relay_settings(tmp_path, {"google": google}, {MODEL: entry})


async def test_refund_on_gives_back_moderated_videos_only_where_the_model_says(tmp_path: Path, media: Path) -> None:
    fake = VeoUpstream(media, Script(outcome="failed"))
    with serving(fake) as up:
        models = {
            name: {**relayed("veo:google", model=VEO, seconds={4: 8}), "refund_on": rule}
            for name, rule in (("kind", "moderation"), ("strict", "never"))
        }
        google = upstream(up.url, base_url=f"{up.url}/v1beta")
        async with live_server(relay_settings(tmp_path, {"google": google}, models)) as server:
            balances = []
            for name in models:
                key = await server.create_key("10")
                task = await source(server.url, (await chat(server.url, key, name)).task_id)
                assert task["error"]["code"] == "content_policy_violation", task
                async with httpx.AsyncClient(timeout=10) as client:
                    grants = await client.get(
                        f"{server.url}/v1/dashboard/billing/credit_grants", headers={"Authorization": key}
                    )
                balances.append(grants.json()["total_available"])
    assert balances == [10.0, 9.0]  # price 1: "moderation" gave it back, "never" kept it


def test_a_duration_veo_cannot_make_stops_the_server(tmp_path: Path) -> None:
    settings = relay_settings(tmp_path, {"google": upstream("http://127.0.0.1:9")}, {})
    bad = ModelEntry("five", "veo:google", 5, {}, 8, 0)
    with pytest.raises(ValueError, match=r"model 'five': 5 s .* veo makes 4, 6, 8 s"):
        make_backend("veo:google", settings, [bad])


@pytest.mark.e2e
def test_the_seed_client_streams_to_the_end_from_veo(tmp_path: Path, media: Path) -> None:
    """The provider's own client.py against `sora-2-hd-15s-chat` made by Veo (8 s, said in the catalog)."""
    fake = VeoUpstream(media, Script(progress=(0, 0, 0, 0)))
    with serving(fake) as up:
        google = upstream(up.url, base_url=f"{up.url}/v1beta", poll_interval=0.05, max_poll_interval=0.1)
        entry = {"backend": "veo:google", "seconds": 8, "options": {"model": VEO, "sizes": {"portrait": "1080p"}}}
        env = server_env(tmp_path, {"sora-2-hd-15s-chat": entry}, upstreams=json.dumps({"google": google}))
        server = Server(tmp_path / "data", env)
        server.start()
        try:
            output = run_seed_client(server, server.create_key("10"), tmp_path)
        finally:
            server.stop()
    assert output.startswith("```json"), output
    assert (
        '"prompt": "中国街头吃西瓜"' in output and '"orientation": "portrait"' in output and '"duration": 8' in output
    )
    assert re.search(r"🏃 进度 (\d+\.\.)*100\.\.", output), output  # Veo reports no progress: the end shows
    assert re.search(r"> ID: `task_[0-9a-z]{26}`", output) and "生成完成 ✅" in output, output
    video = re.search(r"\[在线播放▶️\]\((http[^)]+\.mp4)\)", output)
    assert video and video.group(1).startswith(f"{server.url}/cdn/"), output
    sent = fake.counts.create_bodies[0]["parameters"]
    assert (sent["aspectRatio"], sent["resolution"], sent["durationSeconds"]) == ("9:16", "1080p", 8)
