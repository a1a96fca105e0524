"""The `kling` protocol: Kling's video API (https://app.klingai.com/global/dev/document-api/apiReference/model/textToVideo).

    POST {base}/v1/videos/text2video | image2video      create: {"code": 0, "data": {"task_id", "task_status"}}
    GET  {base}/v1/videos/{endpoint}/{task_id}          poll: task_status submitted | processing | succeed | failed
                                                        and task_result.videos[].url when it succeeded

Every request carries a fresh JWT signed with the key pair (auth.py; the key is `ACCESS_KEY:SECRET_KEY`),
base URL `https://api-singapore.klingai.com` (`https://api-beijing.klingai.com` in China). Kling makes 5
or 10 s; `mode` (std/pro), `sound` and the like come from the catalog's `parameters`. A prompt or image
its content policy refuses (code 1301) is `content_policy_violation` with Kling's message.
"""

from __future__ import annotations

import asyncio
import base64
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase, percent
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, moderated
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.polling import poll
from reelgate.backends.relay.protocol import Started
from reelgate.errors import GenerationError

#: The durations one Kling call makes.
DURATIONS = (5, 10)
#: Kling's codes for content its safety policy refuses.
MODERATION_CODES: frozenset[object] = frozenset({1301})
_PHASES = {
    "submitted": JobPhase.QUEUED,
    "processing": JobPhase.RUNNING,
    "succeed": JobPhase.COMPLETED,
    "failed": JobPhase.FAILED,
}


class Kling:
    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        endpoint = "image2video" if job.image is not None else "text2video"
        try:
            body, _ = await exchange.json(
                "POST", exchange.upstream.url(f"v1/videos/{endpoint}"), json=await payload(job)
            )
        except UpstreamError as exc:
            raise moderated(exc, MODERATION_CODES.__contains__) from exc
        data = body.get("data") if isinstance(body, dict) else None
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if body.get("code") != 0 or not isinstance(task_id, str) or not task_id:
            raise UpstreamError(f"Kling did not accept the video: {clip(str(body.get('message')))}", retryable=False)
        return Started(job_id=f"{endpoint}/{task_id}")

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        assert started.job_id is not None
        return await _follow(exchange, started.job_id, watch)

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        if state.job_id is None:
            raise GenerationError(
                "The server restarted before Kling named this video's task; it was not ordered again.",
                code="upstream_lost",
            )
        return await _follow(exchange, state.job_id, watch)


async def _follow(exchange: Exchange, job_id: str, watch: Watch) -> Outcome:
    endpoint, _, task_id = job_id.partition("/")
    url = exchange.upstream.url(f"v1/videos/{endpoint}/{quote(task_id, safe='')}")
    doc = await poll(exchange, url, watch, read=read_task)
    return Outcome(video_urls=doc.video_urls, thumbnail_urls=doc.thumbnail_urls)


async def payload(job: JobRequest) -> dict[str, Any]:
    """Text-to-video with the aspect ratio, or image-to-video (the image's own ratio) with the image."""
    body: dict[str, Any] = {"model_name": job.model, "prompt": job.prompt, "duration": str(job.seconds)}
    if job.image is None:
        body["aspect_ratio"] = "9:16" if job.orientation is Orientation.PORTRAIT else "16:9"
    else:
        body["image"] = base64.b64encode(await asyncio.to_thread(job.image.read_bytes)).decode()
    return {**body, **job.parameters}


def read_task(body: object) -> JobDocument:
    data = body.get("data") if isinstance(body, dict) else None
    status = data.get("task_status") if isinstance(data, dict) else None
    if not isinstance(data, dict) or status not in _PHASES:
        raise UpstreamError("Kling's task answer has no known task_status", retryable=True)
    phase = _PHASES[status]
    if phase is JobPhase.FAILED:
        message = clip(str(data.get("task_status_msg") or "Kling could not generate this video."))
        return JobDocument(phase, error_code="upstream_failed", error_message=message)
    videos = (data.get("task_result") or {}).get("videos") or []
    return JobDocument(
        phase,
        progress=percent(data.get("progress")),
        video_urls=tuple(v["url"] for v in videos if isinstance(v, dict) and isinstance(v.get("url"), str)),
        thumbnail_urls=tuple(
            v["cover_url"] for v in videos if isinstance(v, dict) and isinstance(v.get("cover_url"), str)
        ),
    )
