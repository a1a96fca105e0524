"""The bucket storage adapter against a real S3 API (moto's server on a loopback port)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.errors import StorageError
from reelgate.storage.s3 import S3Storage, make_store, parse_storage_url
from reelgate.workers.orphans import remove_orphan_files
from tests.conftest import S3Bucket
from tests.store.test_store import completed_task

pytestmark = pytest.mark.s3

VIDEO = bytes(range(256)) * 40  # 10 KiB


def _storage(bucket: S3Bucket, errors: list[str] | None = None) -> S3Storage:
    store = make_store(bucket.url, bucket.endpoint)
    return S3Storage(store, on_error=errors.append if errors is not None else None)


async def _put(storage: S3Storage, tmp_path: Path, extension: str = "mp4") -> str:
    source = tmp_path / f"source.{extension}"
    source.write_bytes(VIDEO)
    key = await storage.put(source, extension)
    assert not source.exists()  # moved, as into a local folder
    return key


def test_the_storage_url_names_bucket_and_prefix() -> None:
    assert parse_storage_url("s3://media/reelgate/prod/") == ("media", "reelgate/prod")
    assert parse_storage_url("s3://media") == ("media", "")
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        parse_storage_url("https://media.example.com/x")


async def test_put_info_read_fetch_and_delete(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    storage = _storage(s3_bucket)
    key = await _put(storage, tmp_path)

    found = await storage.info(key)
    assert found is not None and found.size == len(VIDEO) and found.etag
    assert b"".join([chunk async for chunk in storage.read(key, 100, 300)]) == VIDEO[100:300]
    assert b"".join([chunk async for chunk in storage.read(key, 0, len(VIDEO))]) == VIDEO
    fetched = await storage.fetch(key, tmp_path / "copy.mp4")
    assert fetched is not None and fetched.read_bytes() == VIDEO
    assert storage.local_path(key) is None  # nothing of it is on this machine's disk

    # Stored under the URL's prefix, as `{prefix}/{day}/{name}`: the link's shape.
    async with httpx.AsyncClient() as client:
        listing = (await client.get(f"{s3_bucket.endpoint}/{s3_bucket.url.split('/')[2]}")).text
    assert f"<Key>media/{key}</Key>" in listing

    await storage.delete(key)
    await storage.delete(key)  # idempotent
    assert await storage.info(key) is None
    assert await storage.fetch(key, tmp_path / "gone.mp4") is None and not (tmp_path / "gone.mp4").exists()
    assert [chunk async for chunk in storage.read(key, 0, 10)] == []


async def test_a_presigned_url_serves_the_object_with_its_content_type(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    storage = _storage(s3_bucket)
    key = await _put(storage, tmp_path, "webp")

    url = await storage.presigned_url(key, timedelta(minutes=5))

    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200 and response.content == VIDEO
    assert response.headers["content-type"] == "image/webp"
    assert await storage.presigned_url("../../etc/passwd", timedelta(minutes=5)) is None


async def test_the_orphan_sweep_lists_objects_by_age(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    storage = _storage(s3_bucket)
    key = await _put(storage, tmp_path)

    assert await storage.written_before(time.time() + 60) == [key]
    assert await storage.written_before(time.time() - 3600) == []


async def test_bucket_failures_are_counted_storage_errors_and_readiness_says_so(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    errors: list[str] = []
    missing = S3Bucket("s3://no-such-bucket-here/media", s3_bucket.endpoint, s3_bucket.env)
    storage = _storage(missing, errors)
    source = tmp_path / "video.mp4"
    source.write_bytes(VIDEO)

    with pytest.raises(StorageError, match="could not be stored") as raised:
        await storage.put(source, "mp4")

    assert raised.value.code == "storage_error" and "no-such-bucket" not in raised.value.message
    assert source.exists()  # the rendered file stays for the worker to clean up
    assert errors == ["put"]
    assert not await storage.reachable()
    assert await _storage(s3_bucket).reachable()
    unreachable = S3Storage(make_store("s3://bucket/media", "http://127.0.0.1:9"), on_error=errors.append)
    assert not await unreachable.reachable()


async def test_the_orphan_sweep_deletes_unreferenced_objects_in_the_bucket(
    s3_bucket: S3Bucket, engine: AsyncEngine, tmp_path: Path
) -> None:
    storage = _storage(s3_bucket)
    kept, orphan = await _put(storage, tmp_path), await _put(storage, tmp_path)
    await completed_task(engine, kept, kept)

    assert await remove_orphan_files(engine, storage) == []  # both too recent to be leftovers
    assert await remove_orphan_files(engine, storage, now=time.time() + 7200) == [orphan]

    assert await storage.info(kept) is not None and await storage.info(orphan) is None
