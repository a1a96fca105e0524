"""The chat stream's wire bytes and timing: pre-serialized content lines, the head sent before any wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.api.sse import (
    HEADERS,
    CompletionMeta,
    ContentLines,
    EventStream,
    content_chunk,
    encode,
    stop_chunk,
    stop_line,
)

PIECES = [
    "",
    "plain",
    '```json\n{\n  "prompt": "中国街头吃西瓜",\n  "duration": 10\n}\n```\n\n',
    '"content":"" "role":"assistant","content":""',
    "\x00\x1f\x7f\u2028\u2029 \\ / </script> 😀",
]
METAS = [
    CompletionMeta("chatcmpl-01kabcdefghijklmnopqrstuvw", 1764140000, "sora-2"),
    CompletionMeta("chatcmpl-x", 0, 'quoted "role":"assistant","content":"" \\ 模型'),
    CompletionMeta('chatcmpl-"\x00id\x00"', 4_611_686_018_427_387_911, "\x00model\x00"),
]


@pytest.mark.parametrize("meta", METAS)
@pytest.mark.parametrize("piece", PIECES)
def test_content_lines_are_the_chunk_models_bytes(meta: CompletionMeta, piece: str) -> None:
    lines = ContentLines.of(meta)
    assert lines.line(piece, first=True) == encode(content_chunk(meta, piece, first=True))
    assert lines.line(piece, first=False) == encode(content_chunk(meta, piece))


@pytest.mark.parametrize("meta", METAS)
def test_the_stop_line_is_the_chunk_models_bytes(meta: CompletionMeta) -> None:
    assert stop_line(meta) == encode(stop_chunk(meta))


async def _chunks(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield f"data: {i}\n\n".encode()


def _app(response: Callable[[AsyncIterator[bytes]], StreamingResponse]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await response(_chunks(3))(scope, receive, send)

    return app


async def _endless(closed: asyncio.Event) -> AsyncIterator[bytes]:
    """A stream that never ends by itself; `closed` is set once it has been closed."""
    try:
        while True:
            yield b"data: tick\n\n"
            await asyncio.sleep(0.01)
    finally:
        closed.set()


async def _never_disconnects() -> Message:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def _drop(message: Message) -> None:
    pass


async def _get(app: ASGIApp) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/")


async def test_the_wire_is_starlettes_streaming_response() -> None:
    ours = await _get(_app(EventStream))
    starlettes = await _get(
        _app(lambda chunks: StreamingResponse(chunks, media_type="text/event-stream", headers=HEADERS))
    )
    assert ours.content == starlettes.content == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert ours.headers.raw == starlettes.headers.raw


async def test_head_and_first_chunk_leave_before_other_ready_work() -> None:
    """Starlette's response streams from a new task, behind everything the loop already had ready."""
    order: list[str] = []

    async def send(message: Message) -> None:
        order.append(message["type"] + (f" {message['body']!r}" if message.get("body") else ""))

    asyncio.get_running_loop().call_soon(order.append, "other work")
    scope: Scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
    await EventStream(_chunks(2))(scope, _never_disconnects, send)
    assert order[:2] == ["http.response.start", "http.response.body b'data: 0\\n\\n'"]
    assert [step for step in order if step != "other work"] == [
        "http.response.start",
        "http.response.body b'data: 0\\n\\n'",
        "http.response.body b'data: 1\\n\\n'",
        "http.response.body",
    ]


async def test_a_disconnect_stops_the_rest_of_the_stream() -> None:
    sent: list[Message] = []
    closed = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    stream = _endless(closed)
    await asyncio.wait_for(EventStream(stream)({"type": "http"}, receive, send), 5)
    await stream.aclose()
    assert closed.is_set() and sent[0]["type"] == "http.response.start" and len(sent) > 2
    assert not any(m.get("more_body") is False for m in sent)


async def test_after_a_disconnect_the_request_task_goes_on_with_nothing_left_running() -> None:
    """The listener cancels the request's own task to stop the stream; that cancellation ends there."""
    closed = asyncio.Event()

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def request() -> str:
        await EventStream(_endless(closed))({"type": "http"}, receive, _drop)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # what asyncio.timeout and TaskGroup go by
        await asyncio.sleep(0.01)  # a stray cancellation would land here
        return "went on"

    before = asyncio.all_tasks()
    assert await asyncio.wait_for(request(), 5) == "went on"
    await asyncio.sleep(0)
    assert closed.is_set() and asyncio.all_tasks() == before


async def test_a_failure_to_hear_the_client_stops_the_stream_and_reaches_the_server() -> None:
    closed = asyncio.Event()

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        raise OSError("the connection broke")

    with pytest.raises(OSError, match="the connection broke"):
        await asyncio.wait_for(EventStream(_endless(closed))({"type": "http"}, receive, _drop), 5)
    assert closed.is_set()


async def test_an_error_in_the_stream_reaches_the_server() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"data: 0\n\n"
        await asyncio.sleep(0)
        raise RuntimeError("the stream broke")

    with pytest.raises(RuntimeError, match="the stream broke"):
        await asyncio.wait_for(EventStream(failing())({"type": "http"}, _never_disconnects, _drop), 5)


async def test_a_cancelled_request_cancels_its_stream() -> None:
    """Server shutdown cancels the request's task: the stream and its disconnect listener end with it."""
    closed = asyncio.Event()
    request = asyncio.ensure_future(EventStream(_endless(closed))({"type": "http"}, _never_disconnects, _drop))
    await asyncio.sleep(0.05)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert closed.is_set()
