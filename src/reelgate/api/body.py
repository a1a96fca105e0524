"""Reading a JSON request body with a size limit and OpenAI-shaped errors."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException

from reelgate.errors import InvalidRequest, RequestTooLarge


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    body = await _read_limited(request, max_bytes)
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The request body must be valid JSON.",
            code="invalid_json",
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return value


async def read_form(request: Request, max_bytes: int) -> FormData:
    """A multipart or url-encoded form, read under the size limit; one file at most."""
    # Starlette's form parser reads `request.stream()`, which replays a body already read.
    request._body = await _read_limited(request, max_bytes)
    try:
        return await request.form(max_files=1, max_fields=20)
    except (MultiPartException, ValueError) as exc:
        raise InvalidRequest(f"We could not parse the form body of your request: {exc}", code="invalid_form") from exc


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {max_bytes} bytes.")
