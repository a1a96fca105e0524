"""Characters: `client.videos.create_character` / `get_character` against a live server, per key, and a video
that refers to one (by `characters` or by `@Name`) showing the character's key frame."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import openai
import pytest
from openai.types import Video
from sqlalchemy import func, select

from reelgate.backends.fake import FailingBackend
from reelgate.media.encode import Mp4Writer
from reelgate.store.tables import api_keys, characters, tasks
from reelgate.workers.orphans import remove_orphan_files
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings

MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 8}}
#: The character's colours: a magenta card with a yellow square in its middle.
MAGENTA, YELLOW = (230, 20, 200), (250, 230, 20)


def _clip(path: Path, seconds: int = 2, size: tuple[int, int] = (96, 128)) -> Path:
    width, height = size
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :] = MAGENTA
    frame[height // 3 : 2 * height // 3, width // 4 : 3 * width // 4] = YELLOW
    with Mp4Writer(path, width, height, 8) as writer:
        for _ in range(seconds * 8):
            writer.write(frame)
    return path


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0)]


def _share_near(frame: np.ndarray, color: tuple[int, int, int], tolerance: float = 40.0) -> float:
    """The share of the frame's pixels within `tolerance` of `color`."""
    return float((np.abs(frame - np.asarray(color, np.float32)).max(axis=2) < tolerance).mean())


async def _count(server: LiveServer, table: Any) -> int:
    async with server.app.state.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def _balances(server: LiveServer) -> list[int]:
    async with server.app.state.runtime.engine.connect() as conn:
        return list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())


def _stored(tmp_path: Path) -> list[Path]:
    media = tmp_path / "data" / "media"
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


async def test_create_get_and_list_with_the_openai_package(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        owner, stranger = await server.create_key("10"), await server.create_key("10")
        before = await _balances(server)
        async with _client(server, owner) as client:
            with clip.open("rb") as video:
                created = await client.videos.create_character(name=" Detective Mira ", video=video)
            assert created.id and created.id.startswith("char_") and created.name == "Detective Mira"
            assert abs(created.created_at - time.time()) < 60
            fetched = await client.videos.get_character(created.id)
            assert (fetched.id, fetched.name, fetched.created_at) == (created.id, created.name, created.created_at)
        assert await _balances(server) == before  # characters are not charged
        async with _client(server, stranger) as client:
            with pytest.raises(openai.NotFoundError):
                await client.videos.get_character(created.id)
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            as_stranger = {"Authorization": f"Bearer {stranger}"}
            foreign = await http.get(f"/v1/videos/characters/{created.id}", headers=as_stranger)
            assert_openai_error(foreign, 404, "not_found")
            assert (await http.get("/v1/videos/characters", headers=as_stranger)).json()["data"] == []
            listed = (await http.get("/v1/videos/characters", headers={"Authorization": f"Bearer {owner}"})).json()
            assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [created.id]
            assert listed["data"][0] == {"id": created.id, "created_at": created.created_at, "name": "Detective Mira"}
        # Its key frames are kept: the sweep for files no task references leaves them alone.
        removed = await remove_orphan_files(server.app.state.runtime.engine, server.app.state.runtime.storage, 4e9)
        assert removed == [] and len(_stored(tmp_path)) == 4


async def test_a_video_referring_to_a_character_shows_its_key_frame(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            with clip.open("rb") as video:
                mira = await client.videos.create_character(name="Mira", video=video)
            before = await _balances(server)
            video_ = await client.videos.create_and_poll(
                prompt="Mira walks through a night city in the rain",
                model="sora-2",
                seconds="4",
                extra_body={"characters": [{"id": mira.id}]},
                poll_interval_ms=200,
            )
            assert video_.status == "completed"
            assert before[0] - (await _balances(server))[0] == 400_000  # priced like any 4 s video, once
            mp4 = tmp_path / "with-mira.mp4"
            mp4.write_bytes((await client.videos.download_content(video_.id, variant="video")).content)
            plain = await client.videos.create_and_poll(
                prompt="Mira walks through a night city in the rain", model="sora-2", seconds="4", poll_interval_ms=200
            )
            plain_mp4 = tmp_path / "plain.mp4"
            plain_mp4.write_bytes((await client.videos.download_content(plain.id, variant="video")).content)
        async with server.app.state.runtime.engine.connect() as conn:
            recorded = await conn.scalar(select(tasks.c.characters).where(tasks.c.id == video_.id))
        assert recorded == f'["{mira.id}"]'
    frames, without = _frames(mp4), _frames(plain_mp4)
    assert len(frames) == 32
    # Every shot shows the portrait: the character's magenta and yellow, which the film without it lacks.
    for frame in frames[::4]:
        assert _share_near(frame, MAGENTA) > 0.02 and _share_near(frame, YELLOW) > 0.01
    assert max(_share_near(frame, MAGENTA) for frame in without) < 0.005


async def test_a_chat_prompt_refers_to_a_character_by_at_name(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            with clip.open("rb") as video:
                mira = await client.videos.create_character(name="Mira Bell", video=video)
            reply = await client.chat.completions.create(
                model="sora-2-hd-15s-chat", messages=[{"role": "user", "content": "@mira bell 在雨中的城市里散步"}]
            )
        assert "task_" in (reply.choices[0].message.content or "")
        async with server.app.state.runtime.engine.connect() as conn:
            row = (await conn.execute(select(tasks.c.id, tasks.c.characters, tasks.c.status))).one()
        assert row.characters == f'["{mira.id}"]' and row.status == "completed"
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            mp4 = (await http.get(f"/v1/videos/{row.id}/content", headers={"Authorization": f"Bearer {key}"})).content
    path = tmp_path / "chat.mp4"
    path.write_bytes(mp4)
    assert all(_share_near(frame, MAGENTA) > 0.02 for frame in _frames(path)[::8])


async def test_bad_uploads_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4").read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        url, auth = f"{server.url}/v1/videos/characters", {"Authorization": f"Bearer {key}"}
        bad: list[tuple[dict[str, Any], str | None]] = [
            ({"video": ("a.mp4", clip, "video/mp4")}, "missing_required_parameter"),
            ({"name": (None, "   "), "video": ("a.mp4", clip, "video/mp4")}, "invalid_value"),
            ({"name": (None, "x" * 81), "video": ("a.mp4", clip, "video/mp4")}, "invalid_value"),
            ({"name": (None, "Mi\u0007ra"), "video": ("a.mp4", clip, "video/mp4")}, "invalid_value"),
            ({"name": (None, "Mira")}, "missing_required_parameter"),
            ({"name": (None, "Mira"), "video": ("a.mp4", b"\0\0\0\x18ftypisom" + b"\0" * 500, "video/mp4")}, None),
            ({"name": (None, "Mira"), "video": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")}, None),
            ({"name": (None, "Mira"), "video": ("a.mp4", clip[: len(clip) // 3], "video/mp4")}, None),
            ({"name": (None, "Mira"), "video": ("a.mp4", clip, "video/mp4"), "model": (None, "x")}, None),
        ]
        async with httpx.AsyncClient(timeout=60) as http:
            for files, code in bad:
                response = await http.post(url, files=files, headers=auth)
                assert response.status_code == 400, (files.keys(), response.text)
                if code is not None:
                    assert_openai_error(response, 400, code)
            assert_openai_error(await http.post(url, json={"name": "Mira"}, headers=auth), 400, "invalid_content_type")
            assert_openai_error(await http.post(url, files={"name": (None, "Mira")}), 401, "invalid_api_key")
        assert await _count(server, characters) == 0 and _stored(tmp_path) == []


async def test_videos_refer_only_to_the_keys_own_characters(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        owner, stranger = await server.create_key("10"), await server.create_key("10")
        async with _client(server, owner) as client:
            with clip.open("rb") as video:
                mira = await client.videos.create_character(name="Mira", video=video)
        before = await _balances(server)
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            as_stranger = {"Authorization": f"Bearer {stranger}"}
            body = {"prompt": "Mira dances", "model": "sora-2", "characters": [{"id": mira.id}]}
            foreign = await http.post("/v1/videos", json=body, headers=as_stranger)
            assert_openai_error(foreign, 400, None)
            assert foreign.json()["error"]["param"] == "characters" and mira.id in foreign.json()["error"]["message"]
            as_owner = {"Authorization": f"Bearer {owner}"}
            unknown = {**body, "characters": [{"id": "char_nope"}]}
            assert_openai_error(await http.post("/v1/videos", json=unknown, headers=as_owner), 400, None)
            assert_openai_error(
                await http.post("/v1/videos", json={**body, "characters": "char_x"}, headers=as_owner), 400, None
            )
            form = {"prompt": "Mira dances", "model": "sora-2", "characters[][id]": "char_nope"}
            by_form = await http.post("/v1/videos", files={k: (None, v) for k, v in form.items()}, headers=as_owner)
            assert_openai_error(by_form, 400, None)
            # A stranger's "@Mira" is just text: their prompt names none of their own characters.
            chat = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "@Mira 跳舞"}]}
            assert (await http.post("/v1/chat/completions", json=chat, headers=as_stranger)).status_code == 200
        assert (await _balances(server))[0] == before[0] and await _count(server, tasks) == 1


async def test_a_model_that_cannot_show_characters_refuses_them(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    settings = make_settings(tmp_path, models=MODELS)
    async with live_server(settings, backends={"procedural": FailingBackend()}) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            with clip.open("rb") as video:
                mira = await client.videos.create_character(name="Mira", video=video)
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            body = {"prompt": "Mira dances", "model": "sora-2", "characters": [{"id": mira.id}]}
            refused = await http.post("/v1/videos", json=body, headers={"Authorization": f"Bearer {key}"})
        assert_openai_error(refused, 400, None)
        assert "sora-2" in refused.json()["error"]["message"] and await _count(server, tasks) == 0


async def test_remixes_and_extensions_keep_the_sources_characters(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4")
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            with clip.open("rb") as video:
                mira = await client.videos.create_character(name="Mira", video=video)
            source = await client.videos.create_and_poll(
                prompt="@Mira on green hills", model="sora-2", seconds="4", poll_interval_ms=200
            )
            remix = await client.videos.poll(
                (await client.videos.remix(source.id, prompt="at night")).id, poll_interval_ms=200
            )
            body = {"prompt": "she walks on", "seconds": "4", "video": {"id": source.id}}
            longer = await client.videos.poll(
                (await client.post("/videos/extensions", body=body, cast_to=Video)).id, poll_interval_ms=200
            )
            paths = {}
            for made in (remix, longer):
                assert made.status == "completed", made
                paths[made.id] = tmp_path / f"{made.id}.mp4"
                paths[made.id].write_bytes((await client.videos.download_content(made.id)).content)
        async with server.app.state.runtime.engine.connect() as conn:
            kept = dict((await conn.execute(select(tasks.c.id, tasks.c.characters))).all())
    assert kept[source.id] == kept[remix.id] == kept[longer.id] == f'["{mira.id}"]'
    assert all(_share_near(frame, MAGENTA) > 0.02 for frame in _frames(paths[remix.id])[::4])
    assert all(_share_near(frame, MAGENTA) > 0.02 for frame in _frames(paths[longer.id])[32::4])  # the new part
