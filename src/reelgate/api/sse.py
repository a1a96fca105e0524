"""Markdown pieces -> `chat.completion.chunk` objects -> `data:` lines.

Only `data: {json}` lines and the final `data: [DONE]`: no comments, no `event:` lines, since the
provider's client prints every line that is not JSON. A stream always ends well-formed: when the pieces
fail (the database went away under it), the last piece says so, then `finish_reason` and `[DONE]` follow.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from reelgate.api.schemas import ChatCompletionChunk, ChunkChoice, Delta, Usage

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


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


async def chat_chunks(
    meta: CompletionMeta, pieces: AsyncIterator[str], *, prompt: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """The whole SSE body: content chunks, the stop chunk, the usage chunk if asked, [DONE]."""
    sent: list[str] = []
    try:
        async for piece in pieces:
            yield encode(content_chunk(meta, piece, first=not sent))
            sent.append(piece)
    except Exception:
        log.exception("a chat stream's content failed; ending it")
    yield encode(stop_chunk(meta))
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
