"""`client.videos.edit`: a video (by id or uploaded) changed by the prompt, keeping its timing and framing;
and `client.videos.extend` of an uploaded video. On the procedural backend, over a live server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import openai
from openai.types import Video
from sqlalchemy import func, select

from reelgate.backends.fake import GatedBackend
from reelgate.backends.procedural.backend import ProceduralBackend
from reelgate.billing.audit import verify_ledger
from reelgate.media.probe import probe
from reelgate.store.tables import api_keys, tasks
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings
from tests.inputs.clips import make_clip

#: sora-2's rules and prices (4, 8 or 12 s at 0.1 a second), in a tiny size so that the renders are quick.
MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 8}}


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


async def _ledger(server: LiveServer) -> tuple[list[int], int]:
    """Every key's balance, and how many tasks there are."""
    async with server.app.state.runtime.engine.connect() as conn:
        assert await verify_ledger(conn) == []
        balances = list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())
        return balances, int(await conn.scalar(select(func.count()).select_from(tasks)) or 0)


def _frames(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    width, height = size or (None, None)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24", width=width, height=height) for f in container.decode(video=0)]
    return np.stack(frames).astype(np.float32)


async def _download(client: openai.AsyncOpenAI, video_id: str, path: Path) -> Path:
    return _saved(path, (await client.videos.download_content(video_id, variant="video")).content)


def _saved(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def _edit_by_id(client: openai.AsyncOpenAI, prompt: str, video_id: str) -> Video:
    # openai 3.57's `videos.edit` refuses {"id": ...} before sending (its multipart helper takes files only),
    # so the same multipart body goes through the client's own `post`: prompt and video[id] as form fields.
    return await client.post(
        "/videos/edits",
        body={"prompt": prompt, "video[id]": video_id},
        files=[],
        options={"headers": {"Content-Type": "multipart/form-data"}},
        cast_to=Video,
    )


async def test_edit_a_video_by_id(tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            source = await client.videos.create_and_poll(
                prompt="a red ball on green hills", model="sora-2", seconds="8", poll_interval_ms=200
            )
            (before, _) = await _ledger(server)
            edit = await _edit_by_id(client, "make it purple, at night", source.id)
            assert edit.status in ("queued", "in_progress") and edit.id != source.id
            edit = await client.videos.poll(edit.id, poll_interval_ms=200)
            assert (edit.status, edit.seconds, edit.size, edit.model) == ("completed", "8", source.size, "sora-2")
            assert edit.model_extra and edit.model_extra["edited_from_video_id"] == source.id
            assert before[0] - (await _ledger(server))[0][0] == 800_000  # a new 8 s sora-2 video, once
            source_mp4 = await _download(client, source.id, tmp_path / "source.mp4")
            edit_mp4 = await _download(client, edit.id, tmp_path / "edit.mp4")
        async with httpx.AsyncClient() as http:
            shown = (await http.get(f"{server.url}/source/{edit.id}")).json()
    assert shown["edited_from_video_id"] == source.id and shown["seconds"] == "8"
    info = probe(edit_mp4)
    assert abs(info.duration - 8.0) < 0.15 and (info.width, info.height) == (144, 256) and info.has_audio
    original, edited = _frames(source_mp4), _frames(edit_mp4)
    assert len(edited) == len(original) == 64
    assert np.abs(edited - original).mean() > 20  # it looks different


async def test_edit_an_uploaded_video(tmp_path: Path) -> None:
    # A landscape phone clip of 4.3 s: the edit is sora-2's 4 s at its landscape size, with the clip's sound.
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.3, width=320, height=180, fps=10)
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            (before, _) = await _ledger(server)
            edit = await client.videos.edit(prompt="下雪，夜晚", video=("clip.mp4", clip.read_bytes(), "video/mp4"))
            edit = await client.videos.poll(edit.id, poll_interval_ms=200)
            assert (edit.status, edit.seconds, edit.size, edit.model) == ("completed", "4", "256x144", "sora-2")
            assert edit.model_extra and edit.model_extra["edited_from_video_id"] is None
            assert before[0] - (await _ledger(server))[0][0] == 400_000
            edit_mp4 = await _download(client, edit.id, tmp_path / "edit.mp4")
    info = probe(edit_mp4)
    assert abs(info.duration - 4.0) < 0.15 and (info.width, info.height) == (256, 144) and info.has_audio
    edited = _frames(edit_mp4)
    # The clip at the edit's rate (8 fps) and size: frame k shows the clip at k/8 s (the clip runs at 10 fps).
    shown = _frames(clip, (256, 144))[[int(k / 8 * 10 + 1e-6) for k in range(32)]]
    assert np.abs(edited - shown).mean() > 20
    # The clip's red rises frame by frame; the edit brightens in step with it (its timing is kept).
    assert np.corrcoef(shown.mean(axis=(1, 2, 3)), edited.mean(axis=(1, 2, 3)))[0, 1] > 0.9


async def test_extend_an_uploaded_video(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0, width=144, height=256, fps=8)
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            (before, _) = await _ledger(server)
            extension = await client.videos.extend(
                prompt="the ball rolls away", seconds="4", video=("clip.mp4", clip.read_bytes(), "video/mp4")
            )
            extension = await client.videos.poll(extension.id, poll_interval_ms=200)
            assert (extension.status, extension.seconds, extension.size) == ("completed", "8", "144x256")
            assert before[0] - (await _ledger(server))[0][0] == 400_000  # the 4 new seconds only
            extended_mp4 = await _download(client, extension.id, tmp_path / "extended.mp4")
    info = probe(extended_mp4)
    assert abs(info.duration - 8.0) < 0.15 and info.has_audio
    original, extended = _frames(clip), _frames(extended_mp4)
    assert np.abs(extended[:32] - original).mean() < 6  # the clip opens the video
    assert np.abs(extended[32:] - original[-1]).mean() > 20  # then something else


async def test_bad_sources_charge_nothing_and_make_no_task(tmp_path: Path) -> None:
    models = {**MODELS, "elsewhere": {"backend": "gated", "seconds": 4, "price": "0.25"}}
    gated = GatedBackend(ProceduralBackend())
    settings = make_settings(tmp_path, models=models, video_upload_max_bytes=200_000)
    good = make_clip(tmp_path / "good.mp4", seconds=4.0).read_bytes()
    async with live_server(settings, {"gated": gated}) as server:
        owner, stranger = await server.create_key("10"), await server.create_key("10")
        async with _client(server, owner) as client:
            video = await client.videos.create_and_poll(prompt="城市夜景", model="sora-2", poll_interval_ms=200)
            running = await client.videos.create(prompt="森林", model="elsewhere")
        before = await _ledger(server)
        url = f"{server.url}/v1/videos/edits"
        as_owner, as_stranger = {"Authorization": f"Bearer {owner}"}, {"Authorization": f"Bearer {stranger}"}

        async def refused(status: int, code: str | None, words: str, headers: dict[str, str], **send: Any) -> None:
            answer = await http.post(url, headers=headers, **send)
            assert_openai_error(answer, status, code)
            assert words in answer.json()["error"]["message"], answer.text

        def upload(data: bytes, **fields: str) -> dict[str, Any]:
            return {"data": {"prompt": "下雪", **fields}, "files": {"video": ("clip.mp4", data, "video/mp4")}}

        async with httpx.AsyncClient(timeout=60) as http:
            by_id = {"prompt": "下雪", "video": {"id": video.id}}
            await refused(400, None, "no such video", as_stranger, json=by_id)
            unfinished = {**by_id, "video": {"id": running.id}}
            await refused(400, None, "only completed videos can be edited", as_owner, json=unfinished)
            png = b"\x89PNG\r\n\x1a\n" + bytes(64)
            await refused(400, "invalid_value", "not an MP4 or MOV", as_owner, **upload(png))
            await refused(400, "invalid_value", "could not be read", as_owner, **upload(good[: len(good) // 2]))
            await refused(413, "request_too_large", "larger than", as_owner, **upload(bytes(300_000)))
            long = make_clip(tmp_path / "long.mp4", seconds=6.0).read_bytes()
            await refused(400, "invalid_value", "6.0 seconds", as_owner, **upload(long))
            await refused(400, None, "`elsewhere` cannot edit videos", as_owner, **upload(good, model="elsewhere"))
            await refused(400, "invalid_value", "not both", as_owner, **upload(good, **{"video[id]": video.id}))
            await refused(400, "unknown_parameter", "seconds", as_owner, json={**by_id, "seconds": "4"})
            await refused(400, "missing_required_parameter", "video", as_owner, json={"prompt": "下雪"})
        assert await _ledger(server) == before
        gated.gate.set()


async def test_a_streamed_upload_past_the_cap_is_cut_off_with_a_413(tmp_path: Path) -> None:
    """A chunked body (no Content-Length) is counted as it arrives."""
    boundary = "reelgate-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n下雪\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(150):  # 1.5 MB, past max(REELGATE_MAX_BODY_BYTES, the upload cap + 64 KiB) = 1 MiB
            yield bytes(10_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    settings = make_settings(tmp_path, models=MODELS, video_upload_max_bytes=100_000)
    async with live_server(settings) as server:
        key = await server.create_key("10")
        before = await _ledger(server)
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{server.url}/v1/videos/edits",
                content=body(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        assert_openai_error(answer, 413, "request_too_large")
        assert await _ledger(server) == before
