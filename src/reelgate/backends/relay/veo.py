"""The `veo` protocol: Google's Veo on the Gemini API (https://ai.google.dev/gemini-api/docs/video).

    POST {base}/models/{model}:predictLongRunning     create: {"instances": [...], "parameters": {...}}
    GET  {base}/{operation name}                      poll: {"name", "done", "response" | "error"}
    GET  the sample's `video.uri`                     the MP4, fetched with the key (Veo requires it)

The key goes in `x-goog-api-key` (auth.py), base URL `https://generativelanguage.googleapis.com/v1beta`.
Veo makes 4, 6 or 8 s (plans refuse other catalog durations at start-up), 16:9 or 9:16, 720p or 1080p,
with sound on Veo 3. A video its safety filters withhold is `content_policy_violation` with their reasons.
"""

from __future__ import annotations

import asyncio
import base64
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, message_of
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.polling import poll
from reelgate.backends.relay.protocol import Started
from reelgate.errors import GenerationError

#: The durations one Veo call makes.
DURATIONS = (4, 6, 8)
MODERATED = "content_policy_violation"


class Veo:
    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        url = exchange.upstream.url(f"models/{quote(job.model, safe='')}:predictLongRunning")
        body, _ = await exchange.json("POST", url, json=await payload(job))
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise UpstreamError("Veo's create answer names no operation", retryable=False)
        return Started(job_id=name)

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        assert started.job_id is not None
        return await _follow(exchange, started.job_id, watch)

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        if state.job_id is None:
            raise GenerationError(
                "The server restarted before Veo named this video's operation; it was not ordered again.",
                code="upstream_lost",
            )
        return await _follow(exchange, state.job_id, watch)


async def _follow(exchange: Exchange, name: str, watch: Watch) -> Outcome:
    operation = exchange.upstream.url(quote(name, safe="/"))
    doc = await poll(exchange, operation, watch, read=read_operation)
    return Outcome(video_urls=doc.video_urls)


async def payload(job: JobRequest) -> dict[str, Any]:
    """The request body: prompt (and first frame), then Veo's parameters, the catalog's own last."""
    instance: dict[str, Any] = {"prompt": job.prompt}
    if job.image is not None:
        image = await asyncio.to_thread(job.image.read_bytes)
        instance["image"] = {"bytesBase64Encoded": base64.b64encode(image).decode(), "mimeType": "image/png"}
    parameters = {
        "aspectRatio": "9:16" if job.orientation is Orientation.PORTRAIT else "16:9",
        "resolution": resolution(job.size),
        "durationSeconds": job.seconds,
        **job.parameters,
    }
    return {"instances": [instance], "parameters": parameters}


def resolution(size: str) -> str:
    """`"720p"`/`"1080p"` as the catalog maps it (`sizes`), else from the size's shorter side."""
    if size.endswith("p"):
        return size
    width, _, height = size.partition("x")
    return "1080p" if min(int(width), int(height)) >= 1080 else "720p"


def read_operation(body: object) -> JobDocument:
    """A long-running operation as a job document; retryable UpstreamError when it is no operation."""
    if not isinstance(body, dict) or "name" not in body:
        raise UpstreamError("Veo's operation has no name", retryable=True)
    if not body.get("done"):
        return JobDocument(JobPhase.RUNNING)
    if "error" in body:
        return JobDocument(JobPhase.FAILED, error_code="upstream_failed", error_message=_message(body["error"]))
    answer = (body.get("response") or {}).get("generateVideoResponse") or {}
    videos = tuple(
        sample["video"]["uri"]
        for sample in answer.get("generatedSamples") or ()
        if isinstance(sample, dict) and isinstance(sample.get("video"), dict) and sample["video"].get("uri")
    )
    if videos:
        return JobDocument(JobPhase.COMPLETED, progress=100, video_urls=videos)
    reasons = answer.get("raiMediaFilteredReasons") or []
    if answer.get("raiMediaFilteredCount") or reasons:
        message = " ".join(str(reason) for reason in reasons) or "Veo's safety filters withheld this video."
        return JobDocument(JobPhase.FAILED, error_code=MODERATED, error_message=clip(message))
    return JobDocument(JobPhase.FAILED, error_code="upstream_failed", error_message="Veo returned no video.")


def _message(error: object) -> str:
    return clip(message_of(error) or "Veo could not generate this video.")
