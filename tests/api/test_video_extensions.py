"""`client.videos.extend`: a completed video continued by the prompt, on the procedural backend."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import openai
import pytest
from openai.types import Video
from sqlalchemy import select

from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural.backend import ProceduralBackend
from reelgate.billing.audit import verify_ledger
from reelgate.media.probe import probe, read_audio
from reelgate.store.tables import api_keys
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings

#: sora-2's rules and prices, in a tiny size so that the renders are quick.
MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 8}}
CHAT_MODEL = "sora-2-hd-15s-chat"


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


async def _balances(server: LiveServer) -> list[int]:
    async with server.app.state.runtime.engine.connect() as conn:
        assert await verify_ledger(conn) == []
        return list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0)]


async def _download(client: openai.AsyncOpenAI, video_id: str, path: Path) -> Path:
    return _saved(path, (await client.videos.download_content(video_id, variant="video")).content)


def _saved(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_extend_continues_the_source(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            source = await client.videos.create_and_poll(
                prompt="a red ball on green hills", model="sora-2", seconds="4", poll_interval_ms=200
            )
            before = await _balances(server)
            # openai 3.57's `videos.extend` accepts only an uploaded file (its multipart helper refuses the
            # {"id": ...} reference before sending), so the reference goes as JSON through the client.
            extension = await client.post(
                "/videos/extensions",
                body={"prompt": "the ball rolls into a blue river", "seconds": "8", "video": {"id": source.id}},
                cast_to=Video,
            )
            assert extension.status in ("queued", "in_progress") and extension.id != source.id
            extension = await client.videos.poll(extension.id, poll_interval_ms=200)
            assert (extension.status, extension.seconds, extension.size) == ("completed", "12", source.size)
            assert extension.model_extra and extension.model_extra["extended_from_video_id"] == source.id
            assert before[0] - (await _balances(server))[0] == 800_000  # 8 new seconds of sora-2, once

            source_mp4 = await _download(client, source.id, tmp_path / "source.mp4")
            extended_mp4 = await _download(client, extension.id, tmp_path / "extended.mp4")
        info = probe(extended_mp4)
        assert abs(info.duration - 12.0) < 0.15 and (info.width, info.height) == (144, 256) and info.has_audio
        assert info.audio_duration is not None and abs(info.audio_duration - 12.0) < 0.15
        original, extended = _frames(source_mp4), _frames(extended_mp4)
        assert len(extended) == 12 * 8
        head = np.mean([np.abs(a - b).mean() for a, b in zip(extended[:32], original, strict=True)])
        assert head < 4.0  # the source's frames, re-encoded once
        tail = np.mean([np.abs(frame - original[-1]).mean() for frame in extended[40:]])
        assert tail > 10.0  # the continuation is new footage
        sound, _ = read_audio(extended_mp4)
        assert np.sqrt((sound[:, 4 * 48_000 :] ** 2).mean()) > 0.01  # the soundtrack carries on past the join

        async with httpx.AsyncClient() as http:
            shown = (await http.get(f"{server.url}/source/{extension.id}")).json()
        assert shown["extended_from_video_id"] == source.id and shown["seconds"] == "12"


async def test_a_source_that_cannot_be_extended_charges_nothing(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        owner, stranger = await server.create_key("10"), await server.create_key("10")
        async with _client(server, owner) as client:
            video = await client.videos.create_and_poll(prompt="城市夜景", model="sora-2", poll_interval_ms=200)
        before = await _balances(server)
        url = f"{server.url}/v1/videos/extensions"
        async with httpx.AsyncClient() as http:
            as_stranger = {"Authorization": f"Bearer {stranger}"}
            foreign = await http.post(
                url, json={"prompt": "下雪", "seconds": "4", "video": {"id": video.id}}, headers=as_stranger
            )
            assert_openai_error(foreign, 400, None)
            assert "no such video" in foreign.json()["error"]["message"]
            as_owner = {"Authorization": f"Bearer {owner}"}
            unknown = {"prompt": "下雪", "seconds": "4", "video": {"id": "task_01kaaaaaaaaaaaaaaaaaaaaaaa"}}
            assert_openai_error(await http.post(url, json=unknown, headers=as_owner), 400, None)
            wrong_seconds = {"prompt": "下雪", "seconds": "5", "video": {"id": video.id}}
            assert_openai_error(await http.post(url, json=wrong_seconds, headers=as_owner), 400, "invalid_value")
            upload = await http.post(
                url, data={"prompt": "下雪", "seconds": "4"}, files={"video": ("a.mp4", b"\0" * 64)}, headers=as_owner
            )
            assert_openai_error(upload, 400, "invalid_value")  # an upload is checked (test_video_edits.py)
            assert "not an MP4 or MOV" in upload.json()["error"]["message"]
            form = {"prompt": "下雪", "seconds": "4", "video[id]": video.id}  # how a form names the reference
            by_form = await http.post(url, files={k: (None, v) for k, v in form.items()}, headers=as_owner)
            assert by_form.status_code == 200 and by_form.json()["extended_from_video_id"] == video.id
        after = await _balances(server)
        assert after == [before[0] - 400_000, before[1]]  # only the accepted extension was charged


async def test_unfinished_sources_and_other_backends_are_refused(tmp_path: Path) -> None:
    """A video still rendering cannot be extended; nor can one of a backend that cannot continue videos
    (relays and diffusers; a gated procedural backend stands in for them here)."""
    models = {**MODELS, "elsewhere": {"backend": "gated", "seconds": 4, "price": "0.25"}}
    gated = GatedBackend(ProceduralBackend())
    async with live_server(make_settings(tmp_path, models=models), {"gated": gated}) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client, httpx.AsyncClient() as http:
            headers = {"Authorization": f"Bearer {key}"}
            url = f"{server.url}/v1/videos/extensions"
            video = await client.videos.create(prompt="森林", model="elsewhere")  # type: ignore[arg-type]
            before = await _balances(server)
            ask = {"prompt": "下雪", "seconds": "4", "video": {"id": video.id}}
            unfinished = await http.post(url, json=ask, headers=headers)
            assert_openai_error(unfinished, 400, None)
            assert "only completed videos can be extended" in unfinished.json()["error"]["message"]
            gated.gate.set()
            assert (await client.videos.poll(video.id, poll_interval_ms=200)).status == "completed"
            refused = await http.post(url, json=ask, headers=headers)
            assert_openai_error(refused, 400, None)
            assert "`elsewhere` cannot extend videos" in refused.json()["error"]["message"]
        assert await _balances(server) == before


@pytest.mark.parametrize("ask", ["延长 4 秒", "extend by 4 seconds"])
async def test_extend_through_chat_history(tmp_path: Path, ask: str) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            first_turn = [{"role": "user", "content": "阳光下的绿色森林，横屏"}]
            first = await client.chat.completions.create(model=CHAT_MODEL, messages=first_turn)  # type: ignore[arg-type]
            reply = first.choices[0].message.content or ""
            parent = re.search(r"ID: `(task_\w+)`", reply).group(1)  # type: ignore[union-attr]
            second_turn = [*first_turn, {"role": "assistant", "content": reply}, {"role": "user", "content": ask}]
            stream = await client.chat.completions.create(model=CHAT_MODEL, messages=second_turn, stream=True)  # type: ignore[arg-type]
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
            assert f'"extend_of": "{parent}"' in text and "生成完成 ✅" in text
            child = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
            extended = await client.videos.retrieve(child)
            assert extended.model_extra and extended.model_extra["extended_from_video_id"] == parent
            assert extended.seconds == str(int((await client.videos.retrieve(parent)).seconds) + 4)
