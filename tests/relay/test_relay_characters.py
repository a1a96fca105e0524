"""Characters through relays: the `openai-videos` kind creates each one on its upstream (from the key frame)
and names it by the upstream's id in the create call; other kinds refuse characters at admission."""

from __future__ import annotations

import asyncio
import base64
import io
import tempfile
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reelgate.store.tables import tasks
from tests.characters.test_characters_api import MAGENTA, _clip
from tests.conftest import assert_openai_error, live_server
from tests.relay.conftest import relay_settings, relayed, upstream
from tests.relay.fakes import VideosUpstream
from tests.relay.servers import serving

MODEL = "relay-videos"


class CharactersUpstream(VideosUpstream):
    """The Videos API fake with `POST /v1/videos/characters`, keeping each character's name and clip."""

    def __init__(self, media: Path) -> None:
        self.characters: list[tuple[str, bytes]] = []
        super().__init__(media)

    def routes(self) -> list[Route]:
        return [Route("/v1/videos/characters", self.create_character, methods=["POST"]), *super().routes()]

    async def create_character(self, request: Request) -> Response:
        denied = self.denied(request)
        if denied is not None:
            return denied
        form = await request.form()
        video = form["video"]
        assert not isinstance(video, str)
        self.characters.append((str(form["name"]), await video.read()))
        await form.close()
        return JSONResponse({"id": f"char_up{len(self.characters)}", "created_at": 0, "name": form["name"]})


def _first_frame(mp4: bytes) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        file.write(mp4)
        file.flush()
        with av.open(file.name) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24").astype(np.float32)


def _png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 112), (20, 120, 240)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def _create_character(http: httpx.AsyncClient, auth: dict[str, str], clip: bytes) -> str:
    files: dict[str, Any] = {"name": (None, "Mira"), "video": ("mira.mp4", clip, "video/mp4")}
    created = await http.post("/v1/videos/characters", files=files, headers=auth)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def _completed(http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    created = await http.post("/v1/videos", json=body, headers=auth)
    assert created.status_code == 200, created.text
    for _ in range(600):
        video = (await http.get(f"/v1/videos/{created.json()['id']}", headers=auth)).json()
        if video["status"] in ("completed", "failed"):
            return dict(video)
        await asyncio.sleep(0.05)
    raise AssertionError("the video did not end")


async def test_openai_videos_upstream_gets_the_character(tmp_path: Path, media: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4").read_bytes()
    fake = CharactersUpstream(media)
    with serving(fake) as up:
        settings = relay_settings(
            tmp_path, {"acme": upstream(up.url)}, {MODEL: relayed("openai-videos:acme", model="sora-2")}
        )
        async with live_server(settings) as server:
            auth = {"Authorization": f"Bearer {await server.create_key()}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                mira = await _create_character(http, auth, clip)
                body = {"model": MODEL, "prompt": "Mira dances", "characters": [{"id": mira}]}
                assert (await _completed(http, auth, body))["status"] == "completed"
                with_image = {**body, "input_reference": {"image_url": _png_data_uri()}}
                assert (await _completed(http, auth, with_image))["status"] == "completed"
    # Each video created the character on the upstream from its key frame, and named it by the upstream's id.
    assert [name for name, _ in fake.characters] == ["Mira", "Mira"]
    frame = _first_frame(fake.characters[0][1])
    assert (np.abs(frame - np.asarray(MAGENTA, np.float32)).max(axis=2) < 40).mean() > 0.3
    json_body, form_body = fake.counts.create_bodies
    assert json_body["characters"] == [{"id": "char_up1"}]
    assert form_body["characters[][id]"] == "char_up2" and form_body["input_reference"] is True


async def test_other_relay_kinds_refuse_characters(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "mira.mp4").read_bytes()
    settings = relay_settings(tmp_path, {"p": upstream("http://127.0.0.1:9")}, {"relay-chat": relayed("chat-relay:p")})
    async with live_server(settings) as server:
        auth = {"Authorization": f"Bearer {await server.create_key()}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            mira = await _create_character(http, auth, clip)
            body = {"model": "relay-chat", "prompt": "Mira dances", "characters": [{"id": mira}]}
            refused = await http.post("/v1/videos", json=body, headers=auth)
            assert_openai_error(refused, 400, None)
            assert "relay-chat" in refused.json()["error"]["message"]
            chat = {"model": "relay-chat", "messages": [{"role": "user", "content": "@Mira dances"}]}
            refused = await http.post("/v1/chat/completions", json=chat, headers=auth)
            assert_openai_error(refused, 400, None)
            assert refused.json()["error"]["param"] == "messages"
        async with server.app.state.runtime.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(tasks)) == 0
