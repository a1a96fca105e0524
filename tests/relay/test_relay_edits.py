"""Edits on relayed models: an `openai-videos` upstream gets the source as a file on its own
`POST /videos/edits`; a model on another kind of upstream is a 400 naming it, nothing charged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
from openai.types import Video
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import assert_openai_error, live_server
from tests.inputs.clips import make_clip
from tests.relay.conftest import relay_settings, relayed, upstream
from tests.relay.fakes import VideosUpstream
from tests.relay.servers import serving


class EditingUpstream(VideosUpstream):
    """OpenAI's Videos API with `POST /v1/videos/edits` (multipart: `prompt` and the `video` file)."""

    def __init__(self, media: Path) -> None:
        super().__init__(media)
        self.edits: list[tuple[str, bytes]] = []

    def routes(self) -> list[Route]:
        return [Route("/v1/videos/edits", self.edit, methods=["POST"]), *super().routes()]

    async def edit(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        form = await request.form()
        video = form["video"]
        assert not isinstance(video, str)
        self.edits.append((str(form["prompt"]), await video.read()))
        await form.close()
        job = self.new_job("video_")
        return JSONResponse({"id": job.id, "object": "video", "status": "queued", "progress": 0})


def _models() -> dict[str, Any]:
    return {
        "relay-videos": relayed("openai-videos:acme", model="sora-2"),
        "relay-chat": relayed("chat-relay:chatty", model="sora-2"),
    }


async def test_an_openai_videos_upstream_gets_the_source_on_its_edits_endpoint(tmp_path: Path, media: Path) -> None:
    fake = EditingUpstream(media)
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0, width=64, height=112)
    with serving(fake) as up:
        upstreams = {"acme": upstream(up.url), "chatty": upstream(up.url, kind="chat-relay")}
        async with live_server(relay_settings(tmp_path, upstreams, _models())) as server:
            key = await server.create_key()
            async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as client:
                made = await client.videos.create_and_poll(prompt="a lighthouse", model="relay-videos")
                stored = (await client.videos.download_content(made.id)).content
                by_id = await client.post(
                    "/videos/edits",
                    body={"prompt": "at night", "video[id]": made.id},
                    files=[],
                    options={"headers": {"Content-Type": "multipart/form-data"}},
                    cast_to=Video,
                )
                by_id = await client.videos.poll(by_id.id, poll_interval_ms=100)
                # An upload names its model (`sora-2` otherwise) in a form field, as extra_body sends it.
                uploaded = await client.videos.edit(
                    prompt="下雪",
                    video=("clip.mp4", clip.read_bytes(), "video/mp4"),
                    extra_body={"model": "relay-videos"},
                )
                uploaded = await client.videos.poll(uploaded.id, poll_interval_ms=100)
    assert (by_id.status, by_id.seconds, by_id.size) == ("completed", "4", made.size)
    assert (uploaded.status, uploaded.model, uploaded.size) == ("completed", "relay-videos", "64x112")
    assert fake.edits == [("at night", stored), ("下雪", clip.read_bytes())]


async def test_other_upstream_kinds_cannot_edit(tmp_path: Path, media: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0, width=64, height=112)
    with serving(EditingUpstream(media)) as up:
        upstreams = {"acme": upstream(up.url), "chatty": upstream(up.url, kind="chat-relay")}
        async with live_server(relay_settings(tmp_path, upstreams, _models())) as server:
            key = await server.create_key()
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.post(
                    f"{server.url}/v1/videos/edits",
                    headers={"Authorization": f"Bearer {key}"},
                    data={"prompt": "下雪", "model": "relay-chat"},
                    files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                )
                listed = await http.get(f"{server.url}/v1/videos", headers={"Authorization": f"Bearer {key}"})
    assert_openai_error(answer, 400, None)
    assert "`relay-chat` cannot edit videos" in answer.json()["error"]["message"]
    assert listed.json()["data"] == []
