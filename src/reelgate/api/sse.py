"""Markdown pieces -> `chat.completion.chunk` objects -> `data:` lines.

Only `data: {json}` lines and the final `data: [DONE]`: no comments, no `event:` lines, since the
provider's client prints every line that is not JSON. A stream always ends well-formed: when the pieces
fail (the database went away under it), the last piece says so, then `finish_reason` and `[DONE]` follow.
`EventStream` sends them: its head and first chunk leave at once, in the endpoint's own turn of the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from pydantic_core import to_json
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from reelgate.api.schemas import ChatCompletionChunk, ChunkChoice, Delta, Usage

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class CompletionMeta:
    id: str
    created: int
    model: str


def approx_tokens(text: str) -> int:
    """Billing is per call, not per token; usage reports about four characters a token."""
    return max(1, (len(text) + 3) // 4)


def usage_for(prompt: str, content: str) -> Usage:
    prompt_tokens, completion_tokens = approx_tokens(prompt), approx_tokens(content)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def content_chunk(meta: CompletionMeta, content: str, *, first: bool = False) -> ChatCompletionChunk:
    delta = Delta(role="assistant", content=content) if first else Delta(content=content)
    return ChatCompletionChunk(id=meta.id, created=meta.created, model=meta.model, choices=[ChunkChoice(delta=delta)])


def stop_chunk(meta: CompletionMeta) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        choices=[ChunkChoice(delta=Delta(), finish_reason="stop")],
    )


def usage_chunk(meta: CompletionMeta, usage: Usage) -> ChatCompletionChunk:
    return ChatCompletionChunk(id=meta.id, created=meta.created, model=meta.model, choices=[], usage=usage)


def encode(chunk: ChatCompletionChunk) -> bytes:
    return b"data: " + chunk.model_dump_json(exclude_none=False).encode() + b"\n\n"


class ChunkShape:
    """A chunk's `data:` line with the stream's `CompletionMeta` left out: the bytes around its ID, `created`
    and model, serialized once from marked values. `fill(meta)` puts the stream's in, as pydantic writes
    them: the same bytes as `encode(build(meta))` for a tenth of building and serializing the model.
    """

    _MARKS = CompletionMeta("\x00id\x00", 4_611_686_018_427_387_911, "\x00model\x00")

    def __init__(self, build: Callable[[CompletionMeta], ChatCompletionChunk]) -> None:
        line, marks = encode(build(self._MARKS)), self._MARKS
        head, after_id = self._split(line, to_json(marks.id))
        between, after_created = self._split(after_id, str(marks.created).encode())
        before_model, tail = self._split(after_created, to_json(marks.model))
        self.parts = (head, between, before_model, tail)

    @staticmethod
    def _split(line: bytes, mark: bytes) -> tuple[bytes, bytes]:
        before, found, after = line.partition(mark)
        assert found and mark not in after, f"{mark!r} must be in a chunk's line once"
        return before, after

    def fill(self, meta: CompletionMeta) -> bytes:
        head, between, before_model, tail = self.parts
        return b"".join(
            (head, to_json(meta.id), between, str(meta.created).encode(), before_model, to_json(meta.model), tail)
        )


#: The chunks every stream sends: its content (the first with the role, the later without), its stop.
_FIRST = ChunkShape(lambda meta: content_chunk(meta, "", first=True))
_LATER = ChunkShape(lambda meta: content_chunk(meta, ""))
_STOP = ChunkShape(stop_chunk)
#: Where a content chunk's line puts its content: after `"content":`, before the rest (`""` when shaped).
_CONTENT = b'"content":""'


@dataclass(frozen=True)
class ContentLines:
    """A stream's content chunks as `data:` lines: each chunk's JSON around its content, serialized once.

    The same bytes as `encode(content_chunk(...))`, since the piece goes through pydantic's own string
    serializer; only the piece changes from one chunk to the next.
    """

    first: tuple[bytes, bytes]
    later: tuple[bytes, bytes]

    @classmethod
    def of(cls, meta: CompletionMeta) -> ContentLines:
        return cls(_around_content(_FIRST.fill(meta)), _around_content(_LATER.fill(meta)))

    def line(self, piece: str, *, first: bool) -> bytes:
        head, tail = self.first if first else self.later
        return head + to_json(piece) + tail


def _around_content(line: bytes) -> tuple[bytes, bytes]:
    # The last match: the delta comes after the ID and the model name (where a quote would be escaped).
    head, _, tail = line.rpartition(_CONTENT)
    return head + b'"content":', tail


def stop_line(meta: CompletionMeta) -> bytes:
    """`encode(stop_chunk(meta))`, from its shape."""
    return _STOP.fill(meta)


async def chat_chunks(
    meta: CompletionMeta,
    opening: list[str],
    pieces: AsyncIterator[str] | None = None,
    *,
    prompt: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The whole SSE body: content chunks, the stop chunk, the usage chunk if asked, [DONE].

    The `opening` pieces (a chat video's JSON block and ID line) are ready at once: their chunks leave
    together, in one write, and the `pieces` that follow each in its own as it comes.
    """
    lines = ContentLines.of(meta)
    sent = list(opening)
    if opening:
        yield b"".join(lines.line(piece, first=i == 0) for i, piece in enumerate(opening))
    try:
        if pieces is not None:
            async for piece in pieces:
                yield lines.line(piece, first=not sent)
                sent.append(piece)
    except Exception:
        log.exception("a chat stream's content failed; ending it")
    yield stop_line(meta)
    if include_usage:
        yield encode(usage_chunk(meta, usage_for(prompt, "".join(sent))))
    yield DONE


async def with_last_words(
    pieces: AsyncGenerator[str, None], last_words: Callable[[], str]
) -> AsyncGenerator[str, None]:
    """`pieces` until they end; if they fail instead (the database went away under the stream), one
    last piece from `last_words` that tells the reader where the task can be followed."""
    try:
        async with aclosing(pieces):
            async for piece in pieces:
                yield piece
    except Exception:
        log.warning("a chat stream cannot follow its task any further; ending it", exc_info=True)
        yield last_words()


#: A stream's headers as Starlette encodes them (`init_headers`): once, rather than for every stream.
_HEAD = tuple(StreamingResponse(iter(()), media_type="text/event-stream", headers=HEADERS).raw_headers)


class EventStream(StreamingResponse):
    """A `text/event-stream` response whose head and first chunk are sent before it waits for anything.

    Starlette's `StreamingResponse` streams from a task of its own, which starts only after all the work
    the loop already had ready: under a crowd the other requests', alone the dispatcher handing the new
    task to a worker. A chat stream's first chunk is ready at once, so it leaves first; the rest streams
    in the request's own task, stopped when the client goes away (`while_connected`).
    """

    def __init__(self, chunks: AsyncIterator[bytes], counted_in: Gauge | None = None) -> None:
        super().__init__(chunks, media_type="text/event-stream", headers=HEADERS)
        self.chunks = chunks
        #: Up by one while the stream is sent (`reelgate_active_streams`): until it ends or its client goes.
        self.counted_in = counted_in

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        self.raw_headers = list(_HEAD)  # a list of its own: middleware adds to it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.counted_in is None:
            await self.send_all(receive, send)
            return
        self.counted_in.inc()
        try:
            await self.send_all(receive, send)
        finally:
            self.counted_in.dec()

    async def send_all(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        first = await anext(self.chunks, None)
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        await while_connected(self.stream_response(send), receive)

    async def stream_response(self, send: Send) -> None:
        """The chunks after the first (`__call__` sent the head)."""
        async for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def while_connected(streaming: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run `streaming` in this task until it ends or the client goes away, which cancels it; raise what it raised.

    What Starlette's anyio task group does for a stream and its disconnect listener, with one task (the
    listener's) instead of two: a held stream keeps fewer objects for the collector to go through. The
    listener cancels this task; the cancellation it asked for is taken back here (`uncancel`), one from
    anywhere else (the server shutting down) goes on. Should `receive` fail, the stream stops and this
    raises what it raised, as the task group would.
    """
    this = asyncio.current_task()
    assert this is not None
    gone = False
    failed: list[Exception] = []

    async def listen() -> None:
        nonlocal gone
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception as exc:
            failed.append(exc)
        gone = True
        this.cancel()

    listener = asyncio.get_running_loop().create_task(listen())
    try:
        await streaming
    except asyncio.CancelledError:
        if not gone or this.uncancel() > 0:
            raise
        if failed:
            raise failed[0] from None
    finally:
        listener.cancel()
