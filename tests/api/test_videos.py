"""OpenAI's Videos API over the same tasks as chat, driven by the real `openai` package."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image
from sqlalchemy import select

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural import ProceduralBackend
from reelgate.billing.audit import verify_ledger
from reelgate.media.probe import probe
from reelgate.store.tables import api_keys
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings

#: OpenAI's sizes stay (the rules are about them); a low frame rate keeps the renders quick.
MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"fps": 6}, "sora-2-pro": {"fps": 6}}


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


async def _balance(server: LiveServer) -> list[int]:
    async with server.app.state.runtime.engine.connect() as conn:
        return list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())


async def _books_balance(server: LiveServer) -> None:
    async with server.app.state.runtime.engine.connect() as conn:
        assert await verify_ledger(conn) == []


async def test_sdk_round_trip(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            video = await client.videos.create_and_poll(
                prompt="海边的红色灯塔", model="sora-2", seconds="4", size="1280x720", poll_interval_ms=200
            )
            assert (video.status, video.seconds, video.size, video.model) == ("completed", "4", "1280x720", "sora-2")
            assert video.completed_at is not None and video.progress == 100

            again = await client.videos.retrieve(video.id)
            assert again.id == video.id and again.status == "completed"

            content = await client.videos.download_content(video.id, variant="video")
            mp4 = tmp_path / "video.mp4"
            mp4.write_bytes(content.content)
            info = probe(mp4)
            assert (info.width, info.height) == (1280, 720) and abs(info.duration - 4.0) < 0.1 and info.has_audio

            thumbnail = Image.open(
                io.BytesIO((await client.videos.download_content(video.id, variant="thumbnail")).content)
            )
            assert thumbnail.format == "WEBP" and thumbnail.width > thumbnail.height
            sheet_bytes = (await client.videos.download_content(video.id, variant="spritesheet")).content
            sheet = Image.open(io.BytesIO(sheet_bytes))
            assert sheet.format == "JPEG" and sheet.width == 5 * 192
            again_sheet = (await client.videos.download_content(video.id, variant="spritesheet")).content
            assert again_sheet == sheet_bytes  # made once, then served from storage

            remix = await client.videos.remix(video.id, prompt="变成紫色的夜晚")
            assert remix.remixed_from_video_id == video.id and remix.status in ("queued", "in_progress")
            remix = await client.videos.poll(remix.id, poll_interval_ms=200)
            assert remix.status == "completed" and (remix.size, remix.seconds) == ("1280x720", "4")

            pages, page = [], await client.videos.list(limit=1)
            pages.append([v.id for v in page.data])
            while page.has_next_page():
                page = await page.get_next_page()
                pages.append([v.id for v in page.data])
            assert pages == [[remix.id], [video.id]]  # newest first, one per page
            ascending = await client.videos.list(order="asc")
            assert [v.id for v in ascending.data] == [video.id, remix.id]

            deleted = await client.videos.delete(video.id)
            assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
            with pytest.raises(openai.NotFoundError):
                await client.videos.retrieve(video.id)
            assert [v.id for v in (await client.videos.list()).data] == [remix.id]

        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{server.url}/source/{video.id}")).status_code == 404
            assert (await http.get(f"{server.url}/web/{video.id}")).status_code == 404
            remix_source = (await http.get(f"{server.url}/source/{remix.id}")).json()
            assert remix_source["remixed_from_video_id"] == video.id
            assert (await http.get(remix_source["video_url"])).status_code == 200
        # Two sora-2 videos of 4 s at 0.1 credit a second; deleting one refunds nothing.
        assert await _balance(server) == [9_200_000]
        await _books_balance(server)


async def test_chat_and_api_share_tasks(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            completion = await client.chat.completions.create(
                model="sora-2-hd-10s-chat", messages=[{"role": "user", "content": "雪地里的小狐狸，横屏"}]
            )
            task_id = re.search(r"ID: `(task_\w+)`", completion.choices[0].message.content or "").group(1)  # type: ignore[union-attr]
            video = await client.videos.retrieve(task_id)
            assert (video.status, video.model, video.seconds, video.size) == (
                "completed",
                "sora-2-hd-10s-chat",
                "10",
                "256x144",
            )
            mp4 = tmp_path / "chat.mp4"
            mp4.write_bytes((await client.videos.download_content(task_id)).content)
            assert abs(probe(mp4).duration - 10.0) < 0.1

            made = await client.videos.create_and_poll(prompt="A paper boat on a river", poll_interval_ms=200)
            assert (made.model, made.size, made.seconds) == ("sora-2", "720x1280", "4")  # OpenAI's defaults
        async with httpx.AsyncClient() as http:
            source = (await http.get(f"{server.url}/source/{made.id}")).json()
            assert source["status"] == "completed" and source["orientation"] == "portrait"
            assert (await http.get(f"{server.url}/web/{made.id}")).status_code == 200


async def test_openai_rules_for_seconds_and_size(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server, httpx.AsyncClient() as http:
        key = await server.create_key("10")
        headers = {"Authorization": f"Bearer {key}"}

        async def create(**body: Any) -> httpx.Response:
            return await http.post(f"{server.url}/v1/videos", json={"prompt": "一只猫", **body}, headers=headers)

        refused = await create(seconds=8)
        assert_openai_error(refused, 400, "invalid_type", "invalid_request_error")
        assert refused.json()["error"]["param"] == "seconds" and "integer" in refused.json()["error"]["message"]
        assert_openai_error(await create(seconds="5"), 400, "invalid_value")
        assert_openai_error(await create(size="1024x1792"), 400, "invalid_value")  # sora-2-pro only
        assert_openai_error(await create(size=[720, 1280]), 400, "invalid_type")
        assert_openai_error(await create(model="sora-3"), 404, "model_not_found")
        assert_openai_error(await create(prompt=" "), 400, "empty_prompt")
        assert_openai_error(await create(prompt=None), 400, "missing_required_parameter")
        assert_openai_error(await create(colour="red"), 400, "unknown_parameter")
        assert_openai_error(await create(input_reference={"file_id": "file_1"}), 400, None)
        assert_openai_error(
            await http.post(f"{server.url}/v1/videos", content=b"{", headers=headers), 400, "invalid_json"
        )
        assert await _balance(server) == [10_000_000]  # nothing refused was charged

        accepted = await create(seconds="8", size="720x1280")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["seconds"] == "8" and accepted.headers["openai-poll-after-ms"].isdigit()
        pro = await create(model="sora-2-pro", seconds="4", size="1792x1024")
        assert pro.status_code == 200 and pro.json()["size"] == "1792x1024"
        # 8 s of sora-2 at 0.1 a second and 4 s of sora-2-pro at 0.3.
        assert await _balance(server) == [10_000_000 - 800_000 - 1_200_000]

        content = await http.get(
            f"{server.url}/v1/videos/{accepted.json()['id']}/content?variant=poster", headers=headers
        )
        assert_openai_error(content, 400, None)


async def test_another_keys_video_is_invisible(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        owner, stranger = await server.create_key("10"), await server.create_key("10")
        async with _client(server, owner) as client:
            video = await client.videos.create_and_poll(prompt="城市夜景", poll_interval_ms=200)
        async with httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {stranger}"}
            base = f"{server.url}/v1/videos/{video.id}"
            for response in (
                await http.get(base, headers=headers),
                await http.get(f"{base}/content", headers=headers),
                await http.get(f"{base}/content?variant=spritesheet", headers=headers),
                await http.delete(base, headers=headers),
            ):
                assert_openai_error(response, 404, "not_found")
            remix = await http.post(f"{base}/remix", json={"prompt": "下雪"}, headers=headers)
            assert_openai_error(remix, 400, None)
            assert "no such video" in remix.json()["error"]["message"]
            listing = (await http.get(f"{server.url}/v1/videos", headers=headers)).json()
            assert listing["data"] == [] and listing["has_more"] is False
        assert sorted(await _balance(server)) == [9_600_000, 10_000_000]


async def test_remix_through_chat_history(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            first_turn = [{"role": "user", "content": "阳光下的绿色森林，横屏"}]
            first = await client.chat.completions.create(model="sora-2-hd-15s-chat", messages=first_turn)  # type: ignore[arg-type]
            reply = first.choices[0].message.content or ""
            parent = re.search(r"ID: `(task_\w+)`", reply).group(1)  # type: ignore[union-attr]

            second_turn = [
                *first_turn,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": "改成下雪的夜晚"},
            ]
            stream = await client.chat.completions.create(
                model="sora-2-hd-15s-chat",
                messages=second_turn,  # type: ignore[arg-type]
                stream=True,
            )
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
            assert f'"remix_of": "{parent}"' in text and '"prompt": "改成下雪的夜晚"' in text
            assert '"orientation": "landscape"' in text  # kept from the video being changed
            assert "生成完成 ✅" in text
            child = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
            assert child != parent
            assert (await client.videos.retrieve(child)).remixed_from_video_id == parent

            unknown = [*first_turn, {"role": "assistant", "content": "> ID: `task_01kaaaaaaaaaaaaaaaaaaaaaaa`"}]
            with pytest.raises(openai.BadRequestError) as info:
                await client.chat.completions.create(
                    model="sora-2-hd-15s-chat",
                    messages=[*unknown, {"role": "user", "content": "再来一次"}],  # type: ignore[arg-type]
                )
            assert "Cannot remix" in str(info.value)
        assert await _balance(server) == [8_000_000]


async def test_a_dated_snapshot_makes_its_models_video(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            video = await client.videos.create_and_poll(
                prompt="雪山", model="sora-2-2025-10-06", seconds="4", size="720x1280", poll_interval_ms=200
            )
            assert (video.status, video.model, video.size) == ("completed", "sora-2", "720x1280")


async def test_deleting_a_video_being_made_stops_it_at_once(tmp_path: Path) -> None:
    """The worker hears of the deletion when it is made, not at its next progress write or heartbeat (a
    backend waiting on something reports no progress for as long as it waits)."""
    gated = Silent(ProceduralBackend(), name="procedural")
    async with live_server(make_settings(tmp_path, models=MODELS), {"procedural": gated}) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            video = await client.videos.create(prompt="雪山", model="sora-2", seconds="4")
            await asyncio.wait_for(gated.entered.wait(), 30)
            deleted = await client.videos.delete(video.id)
            assert deleted.deleted is True
            for _ in range(100):  # 5 s: the heartbeat would come after 10 s, and the gate never opens
                task = await _task(server, video.id)
                if task.status.value in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
        assert (task.status.value, task.error.code if task.error else None) == ("failed", "cancelled")
        assert gated.started == 1 and not gated.gate.is_set()
        await _books_balance(server)


class Silent(GatedBackend):
    """Holds its tasks until the gate opens, reporting no progress meanwhile."""

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        return await super().generate(spec, workdir, lambda _percent: None)


async def _task(server: LiveServer, task_id: str) -> Any:
    from reelgate.tasks import repository as repo

    async with server.app.state.runtime.engine.connect() as conn:
        return await repo.get_task(conn, task_id)
