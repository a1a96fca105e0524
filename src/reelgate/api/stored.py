"""Responses that send a stored file, wherever the storage keeps it.

A file on this machine's disk is a `FileResponse` (Range, ETag, conditional requests). A file in a bucket
is either a 302 to a short-lived presigned URL (the bucket sends the bytes) or streamed through this
server with single-range support (`bytes=a-b`, `bytes=a-`, `bytes=-n`), as players and download
managers ask for it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from reelgate.storage.base import CONTENT_TYPES, Storage, StoredObject

#: How long a presigned link a redirect points at stays valid; a player that pauses longer asks again.
PRESIGNED_FOR = timedelta(minutes=15)

RANGE_RE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")


async def stored_file(
    request: Request,
    storage: Storage,
    key: str,
    *,
    redirect: bool,
    headers: dict[str, str] | None = None,
    filename: str | None = None,
) -> Response | None:
    """The response that sends `key` (None when it is not stored): see the module docstring."""
    headers = dict(headers or {})
    media_type = CONTENT_TYPES[key.rsplit(".", 1)[-1]]
    path = storage.local_path(key)
    if path is not None:
        disposition = {"filename": filename, "content_disposition_type": "inline"} if filename else {}
        return FileResponse(path, media_type=media_type, headers=headers, **disposition)  # type: ignore[arg-type]
    found = await storage.info(key)
    if found is None:
        return None
    if redirect:
        url = await storage.presigned_url(key, PRESIGNED_FOR)
        if url is not None:
            return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return _proxied(request, storage, key, found, media_type, headers)


def _proxied(
    request: Request, storage: Storage, key: str, found: StoredObject, media_type: str, headers: dict[str, str]
) -> Response:
    headers |= {"Accept-Ranges": "bytes", "ETag": found.etag}
    wanted = byte_range(request.headers.get("range"), found.size)
    if wanted is None:
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{found.size}"})
    start, end = wanted
    status = 200
    if (start, end) != (0, found.size):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(storage.read(key, start, end), status_code=status, headers=headers, media_type=media_type)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The bytes `[start, end)` a Range header asks for: all of them for no header (or one this does not
    serve, such as several ranges), None when the range cannot be satisfied.

    >>> byte_range("bytes=0-99", 1000), byte_range("bytes=-100", 1000), byte_range("bytes=1000-", 1000)
    ((0, 100), (900, 1000), None)
    """
    match = RANGE_RE.match(header.strip()) if header else None
    if match is None:
        return 0, size
    first, last = match["start"], match["end"]
    if not first:
        return (max(size - int(last), 0), size) if last and int(last) > 0 else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    return (start, end) if start < size and start < end else None
