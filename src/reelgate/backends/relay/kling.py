"""The `kling` protocol: Kling's video API (https://app.klingai.com/global/dev/document-api/apiReference/model/textToVideo).

    POST {base}/v1/videos/text2video | image2video      create: {"code": 0, "data": {"task_id", "task_status"}}
    GET  {base}/v1/videos/{endpoint}/{task_id}          poll: task_status submitted | processing | succeed | failed
                                                        and task_result.videos[].url when it succeeded

Every request carries a fresh JWT signed with the key pair (auth.py; the key is `ACCESS_KEY:SECRET_KEY`),
base URL `https://api-singapore.klingai.com` (`https://api-beijing.klingai.com` in China). Kling makes 5
or 10 s; `mode` (std/pro), `sound` and the like come from the catalog's `parameters`. A prompt or image
its content policy refuses is `content_policy_violation` with Kling's message.

Kling's error codes (the API reference's "General Information", mirrored in
github.com/inference-sh/grid api/klingai/docs/00-general.md): 1300 "trigger strategy of the platform" and
1301 "trigger the content security policy of the platform" are refusals of the content, at create or in a
task's answer. A task that fails later says why only in `task_status_msg` ("displaying the failure reason
when the task fails, such as triggering the content risk control of the platform"), which defines no
code: there, the words of Kling's risk control are read as a fallback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase, percent
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, moderated
from reelgate.backends.relay.jobs import JobRequest
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.task_api import TaskApi, base64_of

#: The durations one Kling call makes.
DURATIONS = (5, 10)
#: Kling's codes for content its platform or content security policy refuses.
MODERATION_CODES: frozenset[object] = frozenset({1300, 1301})
#: Words of a failed task's `task_status_msg` that mean the risk control refused it (no code comes with it).
MODERATION_WORDS = ("risk control", "content security", "security policy", "sensitive", "风控", "内容安全", "敏感")
_PHASES = {
    "submitted": JobPhase.QUEUED,
    "processing": JobPhase.RUNNING,
    "succeed": JobPhase.COMPLETED,
    "failed": JobPhase.FAILED,
}


class Kling(TaskApi):
    name = "Kling"
    can_make = Makes()  # any size: none is sent, `mode` sets the resolution (std 720p, pro 1080p)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
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
        return f"{endpoint}/{task_id}"

    def status_path(self, job_id: str) -> str:
        endpoint, _, task_id = job_id.partition("/")  # the job id names the create endpoint too
        return f"v1/videos/{endpoint}/{quote(task_id, safe='')}"

    def read(self, body: object) -> JobDocument:
        return read_task(body)


async def payload(job: JobRequest) -> dict[str, Any]:
    """Text-to-video with the aspect ratio, or image-to-video (the image's own ratio) with the image."""
    body: dict[str, Any] = {"model_name": job.model, "prompt": job.prompt, "duration": str(job.seconds)}
    if job.image is None:
        body["aspect_ratio"] = "9:16" if job.orientation is Orientation.PORTRAIT else "16:9"
    else:
        body["image"] = await base64_of(job.image)
    return {**body, **job.parameters}


def read_task(body: object) -> JobDocument:
    data = body.get("data") if isinstance(body, dict) else None
    status = data.get("task_status") if isinstance(data, dict) else None
    if not isinstance(data, dict) or status not in _PHASES:
        raise UpstreamError("Kling's task answer has no known task_status", retryable=True)
    phase = _PHASES[status]
    if phase is JobPhase.FAILED:
        return failure(body.get("code") if isinstance(body, dict) else None, data)
    videos = (data.get("task_result") or {}).get("videos") or []
    return JobDocument(
        phase,
        progress=percent(data.get("progress")),
        video_urls=tuple(v["url"] for v in videos if isinstance(v, dict) and isinstance(v.get("url"), str)),
        thumbnail_urls=tuple(
            v["cover_url"] for v in videos if isinstance(v, dict) and isinstance(v.get("cover_url"), str)
        ),
    )


def failure(code: object, data: dict[str, Any]) -> JobDocument:
    """A failed task: a content refusal by Kling's code where the answer carries one, else by the words of
    its `task_status_msg`; any other failure is the upstream's, in Kling's words."""
    message = clip(str(data.get("task_status_msg") or "Kling could not generate this video."))
    refused = code in MODERATION_CODES or any(word in message.lower() for word in MODERATION_WORDS)
    return JobDocument(
        JobPhase.FAILED,
        error_code="content_policy_violation" if refused else "upstream_failed",
        error_message=message,
    )
