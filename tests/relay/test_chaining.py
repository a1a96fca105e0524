"""Chains of upstream calls over the real relay path (catalog -> API -> worker -> fake -> /cdn/): a video
longer than one call makes (Veo's own extension call, or joined shots), extensions of relayed videos, and
the start-up refusal of an entry that cannot be met."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import update

from reelgate.backends.base import Orientation
from reelgate.backends.registry import make_backend
from reelgate.backends.relay.chaining import extension_steps, steps
from reelgate.backends.relay.routing import Plan
from reelgate.backends.relay.veo import DURATIONS as VEO_DURATIONS
from reelgate.catalog import ModelEntry
from reelgate.media.probe import MediaInfo, probe
from reelgate.store.tables import tasks
from tests.conftest import LiveServer, live_server
from tests.e2e.conftest import Server, server_env
from tests.e2e.test_seed_client import run_seed_client
from tests.relay.conftest import assert_seed_stream, chat, relay_settings, relayed, source, upstream
from tests.relay.fakes import Script, VideosUpstream
from tests.relay.servers import serving
from tests.relay.veo_fake import COLOURS, VeoUpstream

MODEL = "sora-2-hd-15s-chat"
VEO = "veo-3.1-generate-preview"


def test_the_fewest_calls_cover_the_seconds_and_extensions_add_whole_calls() -> None:
    veo = Plan("m", (), chain="extend", made=VEO_DURATIONS)
    assert [(step.seconds, step.extends) for step in steps(veo, "veo", 12)] == [(6, False), (7, True)]  # cut to 12
    assert [(step.seconds, step.extends) for step in steps(veo, "veo", 22)] == [(8, False), (7, True), (7, True)]
    assert [step.seconds for step in steps(veo, "veo", 5)] == [6]
    assert [step.seconds for step in extension_steps("veo", 8)] == [7, 7]
    assert [step.seconds for step in extension_steps("openai-videos", 8)] == [8]
    assert [step.seconds for step in steps(Plan("m", (), chain="shots", made=(5, 10)), "kling", 15)] == [10, 5]


def veo_settings(tmp_path: Path, url: str, chain: str = "extend", seconds: int = 15, **extra: Any) -> Any:
    entry = {**relayed("veo:google", model=VEO, chain=chain), "seconds": seconds}
    google = upstream(url, base_url=f"{url}/v1beta", **extra)
    return relay_settings(tmp_path, {"google": google}, {MODEL: entry})


def timed_veo(media: Path, script: Script | None = None) -> VeoUpstream:
    fake = VeoUpstream(media, script)
    fake.timed = True
    return fake


async def _balance(base: str, key: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        grants = await client.get(f"{base}/v1/dashboard/billing/credit_grants", headers={"Authorization": key})
    balance: float = grants.json()["total_available"]
    return balance


async def _video(server: LiveServer, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to /v1/videos{path}, then poll the video until it ends."""
    async with httpx.AsyncClient(timeout=10) as client:
        created = await client.post(f"{server.url}/v1/videos{path}", headers={"Authorization": key}, json=body)
        assert created.status_code == 200, created.text
        for _ in range(600):
            video: dict[str, Any] = (
                await client.get(f"{server.url}/v1/videos/{created.json()['id']}", headers={"Authorization": key})
            ).json()
            if video["status"] in ("completed", "failed"):
                return video
            await asyncio.sleep(0.05)
    raise AssertionError(f"the video never ended: {video}")


async def _mp4(base: str, task_id: str, tmp_path: Path) -> tuple[MediaInfo, list[int]]:
    """The task's re-hosted MP4, probed, and which `COLOURS` entry each second shows."""
    task = await source(base, task_id)
    assert task["status"] == "completed", task
    async with httpx.AsyncClient(timeout=10) as client:
        video = await client.get(task["video_url"])
    path = tmp_path / f"{task_id}.mp4"
    path.write_bytes(video.content)
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    info = probe(path)
    fps = round(info.fps)
    return info, [_colour(frames[i]) for i in range(fps // 2, len(frames), fps)]


def _colour(frame: np.ndarray) -> int:
    mean = frame.reshape(-1, 3).mean(axis=0)
    return int(np.argmin([np.abs(mean - np.asarray(c)).sum() for c in COLOURS]))


async def test_fifteen_seconds_on_veo_are_eight_then_its_own_seven_second_extension(
    tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        async with live_server(veo_settings(tmp_path, up.url)) as server:
            key = await server.create_key("10")
            reply = await chat(server.url, key, MODEL)
            info, seconds = await _mp4(server.url, reply.task_id, tmp_path)
            assert await _balance(server.url, key) == 9.0  # one charge (price 1) for the whole chain
    assert_seed_stream(reply, completed=True)
    assert info.duration == pytest.approx(15.0, abs=0.1) and info.audio_duration == pytest.approx(15.0, abs=0.1)
    assert seconds == [0] * 8 + [1] * 7  # the first call's 8 s, then the extension's 7, joined cleanly
    first, extension = fake.counts.create_bodies
    assert first["parameters"]["durationSeconds"] == 8 and "video" not in first["instances"][0]
    assert extension["instances"][0]["video"]["uri"].endswith("/v1beta/files/op0001:download?alt=media")
    assert "durationSeconds" not in extension["parameters"] and extension["parameters"]["resolution"] == "720p"
    assert fake.counts.accepted == 2 and fake.counts.downloads == 1  # only the whole video is fetched


@pytest.mark.parametrize("chain", ["extend", "shots"])
async def test_a_restart_mid_chain_resumes_the_call_in_flight_and_orders_no_finished_call_again(
    chain: str, tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media, Script(progress=(0,) * 30))
    with serving(fake) as up:
        settings = veo_settings(tmp_path, up.url, chain, poll_interval=0.05, max_poll_interval=0.05)
        async with live_server(settings) as server:
            key = await server.create_key("10")
            async with httpx.AsyncClient(timeout=10) as client:
                created = await client.post(
                    f"{server.url}/v1/videos", headers={"Authorization": key}, json={"model": MODEL, "prompt": "雪山"}
                )
            assert created.status_code == 200, created.text
            for _ in range(800):  # until the second call (the extension) is being polled
                if fake.counts.accepted == 2 and fake.jobs["op0002"].polls >= 2:
                    break
                await asyncio.sleep(0.02)
        assert fake.counts.accepted == 2
        restarted = veo_settings(tmp_path, up.url, chain, poll_interval=0.05, max_poll_interval=0.05)
        async with live_server(restarted) as server:
            video_id = created.json()["id"]
            for _ in range(600):
                if (await source(server.url, video_id))["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
            info, seconds = await _mp4(server.url, video_id, tmp_path)
            assert await _balance(server.url, key) == 9.0
    assert fake.counts.creates == 2 and fake.counts.accepted == 2  # never a call ordered twice
    assert info.duration == pytest.approx(15.0, abs=0.1) and seconds == [0] * 8 + [1] * 7


async def test_shots_join_calls_each_started_on_the_last_frame_before(tmp_path: Path, media: Path) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        async with live_server(veo_settings(tmp_path, up.url, chain="shots")) as server:
            reply = await chat(server.url, await server.create_key(), MODEL)
            info, seconds = await _mp4(server.url, reply.task_id, tmp_path)
    assert info.duration == pytest.approx(15.0, abs=0.1) and info.has_audio
    assert seconds == [0] * 8 + [1] * 7  # 8 s + 8 s, cut at 15
    first, second = fake.counts.create_bodies
    assert "image" not in first["instances"][0] and second["parameters"]["durationSeconds"] == 8
    with Image.open(io.BytesIO(base64.b64decode(second["instances"][0]["image"]["bytesBase64Encoded"]))) as image:
        opening = np.asarray(image.convert("RGB")).reshape(-1, 3).mean(axis=0)
    assert opening == pytest.approx(COLOURS[0], abs=12)  # the first call's last frame


async def test_a_veo_video_is_extended_by_veos_own_call_and_cut_to_the_seconds_asked(
    tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        async with live_server(veo_settings(tmp_path, up.url, seconds=8)) as server:
            key = await server.create_key("10")
            made = await _video(server, key, "", {"model": MODEL, "prompt": "a lighthouse"})
            extended = await _video(
                server, key, "/extensions", {"prompt": "the storm comes", "seconds": "8", "video": {"id": made["id"]}}
            )
            info, seconds = await _mp4(server.url, extended["id"], tmp_path)
    assert extended["status"] == "completed", extended
    # Veo adds 7 s a call: two calls (8 + 14 s), cut at the 8 s asked for after the source's 8.
    assert info.duration == pytest.approx(16.0, abs=0.1) and seconds == [0] * 8 + [1] * 7 + [2]
    assert fake.extensions == [
        f"{up.url}/v1beta/files/op0001:download?alt=media",
        f"{up.url}/v1beta/files/op0002:download?alt=media",
    ]


async def test_a_video_the_upstream_does_not_name_is_refused_at_admission_naming_the_model(
    tmp_path: Path, media: Path
) -> None:
    fake = timed_veo(media)
    with serving(fake) as up:
        async with live_server(veo_settings(tmp_path, up.url, seconds=8)) as server:
            key = await server.create_key("10")
            made = await _video(server, key, "", {"model": MODEL, "prompt": "a lighthouse"})
            async with server.app.state.runtime.engine.begin() as conn:  # as if made before references were kept
                await conn.execute(update(tasks).where(tasks.c.id == made["id"]).values(backend_state=None))
            before = await _balance(server.url, key)
            async with httpx.AsyncClient(timeout=10) as client:
                refused = await client.post(
                    f"{server.url}/v1/videos/extensions",
                    headers={"Authorization": key},
                    json={"prompt": "the storm comes", "seconds": "8", "video": {"id": made["id"]}},
                )
            assert await _balance(server.url, key) == before  # nothing charged
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "video" and error["message"].startswith(f"The model `{MODEL}` cannot extend this video")
    assert fake.counts.accepted == 1  # no extension was ordered


async def test_openai_videos_passes_an_extension_through(tmp_path: Path, media: Path) -> None:
    fake = VideosUpstream(media)
    with serving(fake) as up:
        models = {"relay-videos": {**relayed("openai-videos:acme", model="sora-2"), "seconds": 4}}
        async with live_server(relay_settings(tmp_path, {"acme": upstream(up.url)}, models)) as server:
            key = await server.create_key("10")
            made = await _video(server, key, "", {"model": "relay-videos", "prompt": "a lighthouse"})
            extended = await _video(
                server, key, "/extensions", {"prompt": "night falls", "seconds": "4", "video": {"id": made["id"]}}
            )
    assert extended["status"] == "completed", extended
    assert fake.counts.create_bodies[1] == {"prompt": "night falls", "seconds": "4", "video": {"id": "video_0001"}}
    assert fake.counts.accepted == 2


@pytest.mark.e2e
def test_the_seed_client_streams_fifteen_chained_veo_seconds_to_the_end(tmp_path: Path, media: Path) -> None:
    """The provider's own client.py against `sora-2-hd-15s-chat` really made 15 s long by Veo (8 + 7 s)."""
    fake = timed_veo(media, Script(progress=(0, 0, 0)))
    with serving(fake) as up:
        google = upstream(up.url, base_url=f"{up.url}/v1beta", poll_interval=0.05, max_poll_interval=0.1)
        entry = {"backend": "veo:google", "seconds": 15, "options": {"model": VEO, "chain": "extend"}}
        env = server_env(tmp_path, {MODEL: entry}, upstreams=json.dumps({"google": google}))
        server = Server(tmp_path / "data", env)
        server.start()
        try:
            output = run_seed_client(server, server.create_key("10"), tmp_path)
            video = re.search(r"\[在线播放▶️\]\((http[^)]+\.mp4)\)", output)
            assert video and video.group(1).startswith(f"{server.url}/cdn/"), output
            path = tmp_path / "played.mp4"
            path.write_bytes(httpx.get(video.group(1), timeout=10).content)
        finally:
            server.stop()
    assert output.startswith("```json") and '"duration": 15' in output and "生成完成 ✅" in output, output
    assert probe(path).duration == pytest.approx(15.0, abs=0.1) and fake.counts.accepted == 2


def test_an_entry_longer_than_one_call_without_a_chain_stops_the_server_naming_it(tmp_path: Path) -> None:
    settings = veo_settings(tmp_path, "http://127.0.0.1:9", chain="extend")
    with pytest.raises(ValueError, match=rf"model '{MODEL}'.*options.chain"):
        make_backend("veo:google", settings, [_entry({"model": VEO})])
    assert make_backend("veo:google", settings, [_entry({"model": VEO, "chain": "extend"})]).can_extend  # type: ignore[attr-defined]
    full_hd = {"model": VEO, "chain": "extend", "sizes": {"portrait": "1080p", "landscape": "1080p"}}
    with pytest.raises(ValueError, match=rf"model '{MODEL}': Veo extends 720p videos only.*'shots'"):
        make_backend("veo:google", settings, [_entry(full_hd)])


def _entry(options: dict[str, Any]) -> ModelEntry:
    size = {Orientation.PORTRAIT: (720, 1280), Orientation.LANDSCAPE: (1280, 720)}
    return ModelEntry(name=MODEL, backend="veo:google", seconds=15, sizes=size, fps=24, price=1, options=options)
