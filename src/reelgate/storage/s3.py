"""S3-compatible storage (AWS S3, Cloudflare R2, MinIO, Aliyun OSS) through obstore: `s3://bucket/prefix`.

Objects are named like local files, `{prefix}/{YYYYMMDD}/{32 hex}.{ext}`, so a public link keeps its shape
whichever storage holds it. Every obstore error is translated here, once: a failed write or read is a
`StorageError` (a server fault: its task is refunded), a missing object is None. obstore sends no extra
checksum headers by default, which some S3-compatible stores refuse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store

from reelgate.errors import StorageError
from reelgate.ids import new_file_name
from reelgate.storage.base import CONTENT_TYPES, StoredObject, is_valid_key

log = logging.getLogger(__name__)

#: Bytes asked of the bucket at a time when an object is streamed.
CHUNK = 1024 * 1024
#: A bucket that takes longer than this to answer `/readyz`'s probe counts as down.
PROBE_TIMEOUT_SECONDS = 3.0
#: `/readyz` lists this (empty) prefix: an answer proves the bucket exists and the credentials may list it.
PROBE_PREFIX = "reelgate-readiness-probe"

#: Called with the operation's name when the bucket fails one (the `/metrics` storage error count).
ErrorHook = Callable[[str], None]


def parse_storage_url(url: str) -> tuple[str, str]:
    """The bucket and prefix of `s3://bucket/prefix`.

    >>> parse_storage_url("s3://media/reelgate/prod/")
    ('media', 'reelgate/prod')
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"a storage URL is s3://bucket/prefix, not {url!r}")
    return parts.netloc, parts.path.strip("/")


def make_store(url: str, endpoint_url: str = "", addressing: Literal["path", "virtual"] = "path") -> S3Store:
    """An obstore S3 client for `url`; credentials and region come from the standard `AWS_*` variables."""
    bucket, prefix = parse_storage_url(url)
    config: dict[str, str | bool] = {"virtual_hosted_style_request": addressing == "virtual"}
    if endpoint_url:
        config["endpoint"] = endpoint_url.rstrip("/")
    client = {"allow_http": endpoint_url.startswith("http://"), "timeout": "120s", "connect_timeout": "10s"}
    return S3Store(bucket, prefix=prefix or None, config=config, client_options=client)  # type: ignore[arg-type]


class S3Storage:
    def __init__(self, store: S3Store, on_error: ErrorHook | None = None) -> None:
        self._store = store
        self._on_error = on_error or (lambda operation: None)

    async def put(self, source: Path, extension: str) -> str:
        key = f"{datetime.now(UTC):%Y%m%d}/{new_file_name(extension)}"
        attributes = {"Content-Type": CONTENT_TYPES[extension]}
        with self._translated("put", "stored", missing=False):
            await obstore.put_async(self._store, key, source, attributes=attributes)
        await asyncio.to_thread(source.unlink, missing_ok=True)
        return key

    def local_path(self, key: str) -> Path | None:
        return None

    async def info(self, key: str) -> StoredObject | None:
        if not is_valid_key(key):
            return None
        try:
            with self._translated("head", "read"):
                meta = await obstore.head_async(self._store, key)
        except _Missing:
            return None
        return StoredObject(size=meta["size"], etag=meta["e_tag"] or f'"{meta["size"]:x}"')

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if not is_valid_key(key) or start >= end:
            return
        try:
            with self._translated("get", "read"):
                result = await obstore.get_async(self._store, key, options={"range": (start, end)})
                async for chunk in result.stream(min_chunk_size=CHUNK):
                    yield bytes(chunk)
        except _Missing:
            return  # deleted since its size was read: the response ends short

    async def fetch(self, key: str, target: Path) -> Path | None:
        if not is_valid_key(key):
            return None
        try:
            with self._translated("get", "read"), target.open("wb") as file:
                result = await obstore.get_async(self._store, key)
                async for chunk in result.stream(min_chunk_size=CHUNK):
                    await asyncio.to_thread(file.write, chunk)
        except _Missing:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            return None
        return target

    async def presigned_url(self, key: str, expires: timedelta) -> str | None:
        if not is_valid_key(key):
            return None
        with self._translated("sign", "read"):
            return await obstore.sign_async(self._store, "GET", key, expires)

    async def delete(self, key: str) -> None:
        if is_valid_key(key):
            try:
                with self._translated("delete", "deleted"):
                    await obstore.delete_async(self._store, key)
            except _Missing:
                return

    async def written_before(self, cutoff: float) -> list[str]:
        found = []
        with self._translated("list", "listed"):
            async for batch in obstore.list(self._store, chunk_size=1000):
                found += [meta["path"] for meta in batch if meta["last_modified"].timestamp() < cutoff]
        return found

    async def remove_leftover(self, name: str) -> None:
        """Nothing to do: an upload that never completed is no object (a bucket lifecycle rule removes its
        parts)."""

    async def reachable(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                with self._translated("list", "listed", missing=False):
                    await obstore.list_with_delimiter_async(self._store, PROBE_PREFIX)
        except (StorageError, TimeoutError):
            return False
        return True

    def _translated(self, operation: str, verb: str, *, missing: bool = True) -> _Translate:
        return _Translate(operation, verb, self._on_error, missing)


class _Missing(Exception):
    """An object that is not in the bucket (NotFoundError), for the callers that answer None."""


class _Translate:
    """obstore's errors as reelgate's: a missing object as `_Missing` (where `missing` allows: a PUT's 404
    is a missing bucket), any other as a counted `StorageError`."""

    def __init__(self, operation: str, verb: str, on_error: ErrorHook, missing: bool) -> None:
        self.operation, self.verb, self.on_error, self.missing = operation, verb, on_error, missing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        # obstore raises its NotFoundError as the builtin FileNotFoundError.
        if self.missing and isinstance(exc, NotFoundError | FileNotFoundError):
            raise _Missing() from exc
        if isinstance(exc, BaseError | OSError):
            self.on_error(self.operation)
            log.warning("storage %s failed: %s", self.operation, exc)
            # The bucket's own words name hosts and paths: they go to the log, not to the client.
            raise StorageError(f"The video could not be {self.verb}: the storage bucket failed.") from exc
