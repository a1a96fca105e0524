"""Media in an S3 bucket (moto's S3 server): workers upload, `/cdn/` redirects to a presigned URL (or
proxies with Range), `/content` streams, delete removes the objects, a failing bucket is a refunded fault."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reelgate.billing.audit import verify_ledger
from reelgate.media.probe import probe
from reelgate.store.tables import api_keys
from tests.api.test_chat_stream import BODY
from tests.conftest import LiveServer, S3Bucket, assert_openai_error, live_server, make_settings

pytestmark = pytest.mark.s3

CDN_LINK = re.compile(r"/cdn/\d{8}/[0-9a-f]{32}\.mp4")


async def _render(server: LiveServer, client: httpx.AsyncClient, key: str) -> tuple[str, str]:
    """A finished chat video: its task ID and its public link."""
    reply = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": key})
    assert reply.status_code == 200, reply.text
    content = reply.json()["choices"][0]["message"]["content"]
    assert "生成完成 ✅" in content, content
    task_id = re.search(r"ID: `(task_\w+)`", content).group(1)  # type: ignore[union-attr]
    return task_id, CDN_LINK.search(content).group(0)  # type: ignore[union-attr]


def _objects(bucket: S3Bucket) -> list[str]:
    listing = httpx.get(f"{bucket.endpoint}/{bucket.url.split('/')[2]}").text
    return re.findall(r"<Key>([^<]+)</Key>", listing)


async def test_videos_live_in_the_bucket_and_cdn_links_redirect_to_it(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        task_id, link = await _render(server, client, key)
        stored = _objects(s3_bucket)
        assert f"media{link.removeprefix('/cdn')}" in stored and len(stored) == 2  # the MP4 and its thumbnail
        assert not (settings.media_dir).exists() or not any(settings.media_dir.rglob("*.mp4"))

        redirect = await client.get(f"{server.url}{link}")
        assert redirect.status_code == 302 and "X-Amz-Signature=" in redirect.headers["location"]
        video = await client.get(redirect.headers["location"])
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        (tmp_path / "cdn.mp4").write_bytes(video.content)
        assert probe(tmp_path / "cdn.mp4").duration > 0

        auth = {"Authorization": f"Bearer {key}"}
        content = await client.get(f"{server.url}/v1/videos/{task_id}/content", headers=auth)
        assert content.status_code == 200 and content.content == video.content
        assert content.headers["content-length"] == str(len(video.content))
        part = await client.get(f"{server.url}/v1/videos/{task_id}/content", headers=auth | {"Range": "bytes=8-99"})
        assert part.status_code == 206 and part.content == video.content[8:100]
        assert part.headers["content-range"] == f"bytes 8-99/{len(video.content)}"
        sheet = await client.get(f"{server.url}/v1/videos/{task_id}/content?variant=spritesheet", headers=auth)
        assert sheet.status_code == 200 and sheet.content[:3] == b"\xff\xd8\xff"  # a JPEG made from the bucket's MP4

        ready = await client.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["storage"] == "ok"

        assert (await client.delete(f"{server.url}/v1/videos/{task_id}", headers=auth)).status_code == 200
        assert _objects(s3_bucket) == []  # video, thumbnail and spritesheet
        assert (await client.get(f"{server.url}{link}")).status_code in (404, 410)


async def test_proxy_mode_streams_cdn_links_with_ranges(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    async with (
        live_server(make_settings(tmp_path, cdn_mode="proxy")) as server,
        httpx.AsyncClient(timeout=60) as client,
    ):
        _, link = await _render(server, client, await server.create_key("10"))

        whole = await client.get(f"{server.url}{link}")
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["cache-control"].startswith("public")
        tail = await client.get(f"{server.url}{link}", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == whole.content[-10:]
        head = await client.head(f"{server.url}{link}")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(whole.content))
        beyond = await client.get(f"{server.url}{link}", headers={"Range": f"bytes={len(whole.content)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole.content)}"
        assert (await client.get(f"{server.url}/cdn/20260101/{'0' * 32}.mp4")).status_code == 404


async def test_a_cdn_base_url_is_where_links_point(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cdn_base_url="https://media.example.com/videos/")
    async with live_server(settings) as server, httpx.AsyncClient(timeout=60) as client:
        reply = await client.post(
            f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": await server.create_key("10")}
        )
        content = reply.json()["choices"][0]["message"]["content"]
        assert re.search(r"https://media\.example\.com/videos/\d{8}/[0-9a-f]{32}\.mp4", content), content


async def test_a_failing_bucket_fails_the_task_refunds_it_and_is_counted(
    s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELGATE_STORAGE_URL", "s3://no-such-bucket-here/media")
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        ready = await client.get(f"{server.url}/readyz")
        assert_openai_error(ready, 503, "service_unavailable", "server_error")
        assert "storage" in ready.json()["error"]["message"]

        reply = await client.post(f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": key})

        assert "生成失败 ❌" in reply.json()["choices"][0]["message"]["content"]
        async with server.app.state.runtime.engine.connect() as conn:
            assert await verify_ledger(conn) == []
            assert list((await conn.scalars(select(api_keys.c.balance))).all()) == [10_000_000]  # refunded
        metrics = (await client.get(f"{server.url}/metrics")).text
        assert re.search(r'reelgate_storage_errors_total\{operation="put"\} [1-9]', metrics), metrics
