"""The `openai-videos` protocol: any upstream that speaks OpenAI's Videos API.

    POST {base}/videos                          create (JSON, or multipart with `input_reference`)
    POST {base}/videos/extensions               extend a video it made: {"prompt", "seconds", "video": {"id"}}
    POST {base}/videos/characters               a character the video shows, from its key frame (`characters.py`)
    POST {base}/videos/edits                    edit a video: multipart `prompt` and the source as `video`
    GET  {base}/videos/{id}                     poll: status, progress, error
    GET  {base}/videos/{id}/content             the MP4 (`?variant=thumbnail` for the still)

Gateways that put a direct link in the job (`video_url`, `url`, ...) are served too: those links are
tried after the content endpoint.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reelgate.backends.relay.characters import upstream_characters
from reelgate.backends.relay.documents import JobDocument, job_object, read_job
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.polling import poll
from reelgate.backends.relay.protocol import Started
from reelgate.backends.relay.upstream import Upstream
from reelgate.errors import GenerationError


class OpenAIVideos:
    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        if job.edit is not None:
            return await _start_edit(exchange, job, job.edit)
        body, _ = await exchange.json(
            "POST",
            exchange.upstream.url("videos/extensions" if job.extend else "videos"),
            headers={"Idempotency-Key": job.idempotency_key},
            **await _payload(job, await upstream_characters(exchange, job.characters) if not job.extend else []),
        )
        job_doc = job_object(body) or {}
        job_id = job_doc.get("id") or job_doc.get("task_id")
        if not isinstance(job_id, str | int) or not str(job_id):
            raise UpstreamError("the upstream's create answer has no job id", retryable=False)
        first = read_job(job_doc) if job_doc.get("status") else None
        return Started(job_id=str(job_id), carry=first)

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        assert started.job_id is not None
        return await self._follow(exchange, started.job_id, watch, started.carry)

    def video_ref(self, state: JobState, outcome: Outcome) -> str | None:
        """What `POST /videos/extensions` names a finished video by: its id."""
        return state.job_id

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        if state.job_id is None:
            raise GenerationError(
                "The server restarted before the upstream named this video's job; it was not ordered again.",
                code="upstream_lost",
            )
        return await self._follow(exchange, state.job_id, watch, None)

    async def _follow(self, exchange: Exchange, job_id: str, watch: Watch, first: JobDocument | None) -> Outcome:
        upstream = exchange.upstream
        doc = await poll(exchange, _job_url(upstream, job_id), watch, first)
        content = _job_url(upstream, job_id) + "/content"
        return Outcome(
            video_urls=(content, *doc.video_urls),
            thumbnail_urls=(content + "?variant=thumbnail", *doc.thumbnail_urls),
        )


async def _start_edit(exchange: Exchange, job: JobRequest, source: Path) -> Started:
    """`client.videos.edit` with an uploaded file, as the `openai` package sends it."""
    video = await asyncio.to_thread(source.read_bytes)
    body, _ = await exchange.json(
        "POST",
        exchange.upstream.url("videos/edits"),
        headers={"Idempotency-Key": job.idempotency_key},
        data={"prompt": job.prompt},
        files={"video": ("source.mp4", video, "video/mp4")},
    )
    job_doc = job_object(body) or {}
    job_id = job_doc.get("id")
    if not isinstance(job_id, str | int) or not str(job_id):
        raise UpstreamError("the upstream's edit answer has no job id", retryable=False)
    return Started(job_id=str(job_id), carry=read_job(job_doc) if job_doc.get("status") else None)


def _job_url(upstream: Upstream, job_id: str) -> str:
    return upstream.url(f"videos/{quote(job_id, safe='')}")


async def _payload(job: JobRequest, characters: list[dict[str, str]]) -> dict[str, Any]:
    """JSON, or multipart with the reference image as `input_reference` (what OpenAI's SDK sends); the
    upstream's `characters` as `[{"id"}]` (a form repeats `characters[][id]`)."""
    if job.extend is not None:
        return {"json": {"prompt": job.prompt, "seconds": str(job.seconds), "video": {"id": job.extend}}}
    fields = {"model": job.model, "prompt": job.prompt, "seconds": str(job.seconds), "size": job.size}
    if job.image is None:
        return {"json": {**fields, "characters": characters} if characters else fields}
    image = await asyncio.to_thread(job.image.read_bytes)
    form: dict[str, Any] = {**fields, "characters[][id]": [c["id"] for c in characters]} if characters else fields
    return {"data": form, "files": {"input_reference": ("reference.png", image, "image/png")}}
