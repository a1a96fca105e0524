"""Reading a request body with a size limit and OpenAI-shaped errors, refusing what no handler should see.

Every body a route reads goes through here: too large is a 413, and JSON nested deeper than
`MAX_JSON_DEPTH` or text no database can store (a NUL, a lone UTF-16 surrogate) is a 400, once,
for every endpoint. Routes whose body FastAPI parses (the admin API) get the same check from
`check_parsed_body`, a router dependency.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message, Receive

from reelgate.errors import InvalidRequest, RequestTooLarge

#: Far deeper than any request reelgate takes (a chat body is about 5 deep), far below the recursion limit.
MAX_JSON_DEPTH = 64


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    body = await _read_limited(request, max_bytes)
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The request body must be valid JSON.",
            code="invalid_json",
        ) from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    if not plainly_acceptable(body):
        check_json_value(value)
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return value


async def read_form(request: Request, max_bytes: int) -> FormData:
    """A multipart or url-encoded form, read under the size limit; one file at most."""
    # Starlette's form parser reads `request.stream()`, which replays a body already read.
    request._body = await _read_limited(request, max_bytes)
    return await _parsed_form(request)


async def read_streamed_form(request: Request, max_bytes: int) -> FormData:
    """`read_form` for a body that carries a large file (an uploaded video): the body is counted against
    `max_bytes` as it arrives and parsed as it streams, so the file goes to Starlette's spooled temporary
    file (on disk past 1 MB) instead of being held in memory whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    return await _parsed_form(Request(request.scope, _counted(request.receive, max_bytes)))


def _counted(receive: Receive, max_bytes: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > max_bytes:
            raise _too_large(max_bytes)
        return message

    return counted


async def _parsed_form(request: Request) -> FormData:
    try:
        form = await request.form(max_files=1, max_fields=20)
    except (MultiPartException, ValueError, HTTPException) as exc:
        # Inside an app Starlette turns its parser's refusals (a second file, too many fields) into a bare
        # HTTPException 400, which would reach the client with no code.
        reason = exc.detail if isinstance(exc, HTTPException) else exc
        message = f"We could not parse the form body of your request: {reason}"
        raise InvalidRequest(message, code="invalid_form") from exc
    try:
        for name, value in form.multi_items():
            check_text(name)
            if isinstance(value, str):
                check_text(value)
    except InvalidRequest:
        await form.close()  # an uploaded file's temporary file
        raise
    return form


async def check_parsed_body(request: Request) -> None:
    """A router dependency: the checks of `check_json_value` on a JSON body FastAPI has parsed.

    FastAPI reads and parses the body before it solves dependencies and keeps the result on the request.
    """
    check_json_value(getattr(request, "_json", None))


def plainly_acceptable(body: bytes) -> bool:
    """Whether the JSON `body` parses to a value that `check_json_value` would accept, seen in its bytes.

    A string can hold a NUL or a lone surrogate only through a `\\u` escape, a NUL byte (UTF-16 and UTF-32
    put one in every ASCII character) or UTF-8's encoding of a surrogate (lead byte 0xED, which `json`
    decodes with `surrogatepass`); JSON allows no raw control character. And a value cannot nest deeper
    than its body has brackets. Most bodies have none of the first and a few of the last: their walk is
    spared (Korean text, whose UTF-8 starts with 0xED too, takes the walk).
    """
    if b"\\u" in body or b"\x00" in body or b"\xed" in body:
        return False
    return body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH


def check_json_value(value: object) -> None:
    """InvalidRequest if `value` nests deeper than MAX_JSON_DEPTH or holds a string `check_text` refuses.

    Iterative, so a hostile body cannot exhaust the stack here either.
    """
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def check_text(text: str) -> None:
    """InvalidRequest for text a database cannot store: a NUL character or a lone UTF-16 surrogate.

    >>> check_text("一只猫")  # fine; check_text("\\ud800") and check_text("a\\x00b") are 400s
    """
    if "\x00" in text:
        raise InvalidRequest(
            "The request contains a NUL character (\\u0000), which is not allowed.", code="invalid_text"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequest(
                "The request contains a lone UTF-16 surrogate (such as \\ud800), which is not valid text.",
                code="invalid_text",
            ) from exc


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


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The JSON body of your request is nested more than {MAX_JSON_DEPTH} levels deep.", code="invalid_json"
    )


def _too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {max_bytes} bytes.")
