"""The `chat-relay` protocol: an upstream that makes videos behind `POST /chat/completions`.

The prompt (and the reference image, as an `image_url` part) goes up as one user message with
`stream: true`; the stream is read with `ChatReading`. The job is accepted once the upstream answers
200. When the stream breaks off, the job is followed through the raw-data link the upstream gave (the
seed provider's `原始数据`, a JSON document); an upstream that gave none cannot be followed, and the
video is never ordered a second time: that would be charged twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from contextlib import AsyncExitStack
from typing import Any

import httpx

from reelgate.backends.relay.chat_reading import ChatReading
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.polling import poll
from reelgate.backends.relay.protocol import Started
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)

NO_FOLLOW = (
    "The upstream offers no way to follow this video, so it was not ordered again (that would be charged twice)."
)


class ChatRelay:
    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        body = {"model": job.model, "stream": True, "messages": [{"role": "user", "content": await _content(job)}]}
        response = await stack.enter_async_context(
            exchange.stream(
                "POST",
                exchange.upstream.url("chat/completions"),
                json=body,
                headers={"Accept": "text/event-stream", "Idempotency-Key": job.idempotency_key},
            )
        )
        return Started(carry=response)

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        reading = ChatReading()
        try:
            await _read(exchange, started.carry, reading, watch)
        except UpstreamError as exc:
            if reading.video_url is None and reading.failure is None:
                log.warning("upstream %s: the chat stream broke off: %s", exchange.upstream.name, exc.message)
                return await self._follow(exchange, reading.follow_url, watch, "The connection to the upstream broke.")
        return await self._result(exchange, reading, watch)

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        return await self._follow(
            exchange, state.follow_url, watch, "The server restarted while the upstream was generating this video."
        )

    async def _result(self, exchange: Exchange, reading: ChatReading, watch: Watch) -> Outcome:
        if reading.video_url is not None:
            thumbnail = reading.thumbnail_url
            return Outcome((reading.video_url,), (thumbnail,) if thumbnail else ())
        if reading.failure is not None:
            raise GenerationError(reading.failure, code="upstream_failed")
        if reading.follow_url is not None:
            return await self._follow(exchange, reading.follow_url, watch, "")
        said = [line.strip("> \t") for line in reading.prose.splitlines() if line.strip("> \t")]
        detail = f" Its last words: {clip(said[-1])}" if said else ""
        raise GenerationError(f"The upstream ended its reply without a video.{detail}", code="upstream_failed")

    async def _follow(self, exchange: Exchange, url: str | None, watch: Watch, why: str) -> Outcome:
        if url is None:
            raise GenerationError(f"{why} {NO_FOLLOW}".strip(), code="upstream_lost")
        doc = await poll(exchange, url, watch)
        return Outcome(doc.video_urls, doc.thumbnail_urls)


async def _read(exchange: Exchange, response: httpx.Response, reading: ChatReading, watch: Watch) -> None:
    """Feed the stream to `reading` to its end, passing on progress and what identifies the job."""
    if response.headers.get("content-type", "").startswith("application/json"):
        text = "".join([line async for line in exchange.lines(response)])
        try:
            reading.take(json.loads(text))
        except (ValueError, AttributeError):
            reading.error = "The upstream answered with something that is not a chat completion."
        return
    async for line in exchange.lines(response):
        reading.feed(line)
        await watch.learn(job_id=reading.job_id, follow_url=reading.follow_url)
        if reading.progress is not None:
            watch.progress(reading.progress)
        if reading.ended:  # finish_reason or [DONE]: what follows is at most the end marker
            return


async def _content(job: JobRequest) -> str | list[dict[str, Any]]:
    if job.image is None:
        return job.prompt
    image = await asyncio.to_thread(job.image.read_bytes)
    data_uri = "data:image/png;base64," + base64.b64encode(image).decode()
    return [{"type": "text", "text": job.prompt}, {"type": "image_url", "image_url": {"url": data_uri}}]
