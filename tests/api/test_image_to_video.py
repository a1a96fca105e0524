"""Image-to-video through the Videos API and chat: the video opens on the image; unsafe URLs are refused."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw

from reelgate.inputs.images import fit_cover
from reelgate.media.probe import read_frame
from tests.api.test_videos import MODELS, _balance, _client
from tests.conftest import assert_openai_error, live_server, make_settings


def _picture() -> Image.Image:
    """A landscape picture with gradients and shapes, so a wrong crop or a stretch shows."""
    y, x = np.mgrid[0:360, 0:640]
    rgb = np.stack([x * 255 // 640, y * 255 // 360, 255 - x * 200 // 640], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 110, 390, 250), fill=(250, 240, 40))
    draw.rectangle((40, 40, 140, 300), fill=(20, 20, 20))
    return image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _data_uri(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(_png(image)).decode()


def _first_frame_error(video: bytes, image: Image.Image, workdir: Path) -> float:
    path = workdir / "opening.mp4"
    path.write_bytes(video)
    frame = read_frame(path, 0).astype(np.float64)
    expected = fit_cover(image, frame.shape[1], frame.shape[0]).astype(np.float64)
    return float(np.abs(frame - expected).mean())


@asynccontextmanager
async def image_server(body: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback: `/ref.png` the image, `/hop` a redirect into a private address."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = request.split(" ")[1]
        seen.append(path)
        if path == "/hop":
            head = "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/ref.png\r\nContent-Length: 0\r\n"
            writer.write(f"{head}Connection: close\r\n\r\n".encode())
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}\r\n"
            writer.write(f"{head}Connection: close\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_api_upload_and_data_uri_open_on_the_image(tmp_path: Path) -> None:
    picture = _picture()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client, httpx.AsyncClient(timeout=30) as http:
            uploaded = await client.videos.create_and_poll(
                prompt="镜头慢慢推进",
                size="720x1280",
                input_reference=("picture.png", _png(picture), "image/png"),
                poll_interval_ms=200,
            )
            # The SDK uploads files; a reference by URL or data URI goes as JSON.
            created = await http.post(
                f"{server.url}/v1/videos",
                json={
                    "prompt": "The camera drifts",
                    "size": "1280x720",
                    "input_reference": {"image_url": _data_uri(picture)},
                },
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 200, created.text
            inline = await client.videos.poll(created.json()["id"], poll_interval_ms=200)
            for video in (uploaded, inline):
                assert video.status == "completed", video.error
                mp4 = (await client.videos.download_content(video.id)).content
                assert _first_frame_error(mp4, picture, tmp_path) < 8.0
                assert _first_frame_error(mp4, picture.rotate(180), tmp_path) > 30.0  # the check can fail


async def test_chat_image_part_from_an_allowed_url(tmp_path: Path) -> None:
    picture = _picture()
    async with image_server(_png(picture)) as (base, seen):
        settings = make_settings(tmp_path, models=MODELS, image_fetch_allow=["127.0.0.1/32"])
        async with live_server(settings) as server, _client(server, await server.create_key("10")) as client:
            content: Any = [
                {"type": "text", "text": "让画面动起来，横屏"},
                {"type": "image_url", "image_url": {"url": f"{base}/ref.png"}},
            ]
            reply = await client.chat.completions.create(
                model="sora-2-hd-10s-chat", messages=[{"role": "user", "content": content}]
            )
            text = reply.choices[0].message.content or ""
            assert '"image": true' in text and "生成完成 ✅" in text
            mp4_url = re.search(r"\((http[^)]+\.mp4)\)", text).group(1)  # type: ignore[union-attr]
            async with httpx.AsyncClient() as http:
                mp4 = (await http.get(mp4_url)).content
            assert _first_frame_error(mp4, picture, tmp_path) < 8.0
        assert seen == ["/ref.png"]


def _chat_with_image(url: str) -> dict[str, Any]:
    content = [{"type": "text", "text": "一只猫"}, {"type": "image_url", "image_url": {"url": url}}]
    return {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": content}]}


async def test_unsafe_urls_are_refused_without_a_connection(tmp_path: Path) -> None:
    async with (
        image_server(_png(_picture())) as (base, seen),
        live_server(make_settings(tmp_path, models=MODELS)) as server,
        httpx.AsyncClient(timeout=30) as http,
    ):
        port = base.rsplit(":", 1)[1]
        key = await server.create_key("10")
        unsafe = [
            f"http://127.0.0.1:{port}/ref.png",
            f"http://localhost:{port}/ref.png",  # a name that resolves to loopback
            "http://10.0.0.1/ref.png",
            "http://169.254.169.254/latest/meta-data/",
            f"http://[::1]:{port}/ref.png",
            "file:///etc/passwd",
            "data:text/plain;base64,aGVsbG8=",
        ]
        for url in unsafe:
            response = await http.post(
                f"{server.url}/v1/videos",
                json={"prompt": "一只猫", "input_reference": {"image_url": url}},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert_openai_error(response, 400, None, "invalid_request_error")
            assert response.json()["error"]["param"] == "input_reference", url
            chat = await http.post(
                f"{server.url}/v1/chat/completions", json=_chat_with_image(url), headers={"Authorization": key}
            )
            assert_openai_error(chat, 400, None)
        assert await _balance(server) == [10_000_000]
        assert seen == []  # nothing ever reached the loopback image server


async def test_a_redirect_into_a_private_address_is_refused(tmp_path: Path) -> None:
    async with image_server(_png(_picture())) as (base, seen):
        settings = make_settings(tmp_path, models=MODELS, image_fetch_allow=["127.0.0.1/32"])
        async with live_server(settings) as server, httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{server.url}/v1/videos",
                json={"prompt": "一只猫", "input_reference": {"image_url": f"{base}/hop"}},
                headers={"Authorization": f"Bearer {await server.create_key('10')}"},
            )
            assert_openai_error(response, 400, None)
            message = response.json()["error"]["message"]
            assert "10.0.0.1" in message and "redirect" in message
            assert await _balance(server) == [10_000_000]
        assert seen == ["/hop"]
