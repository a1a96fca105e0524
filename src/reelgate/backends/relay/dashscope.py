"""The `dashscope` protocol: Wan video synthesis on Alibaba Cloud Model Studio
(https://www.alibabacloud.com/help/en/model-studio/text-to-video-api-reference).

    POST {base}/api/v1/services/aigc/video-generation/video-synthesis    with `X-DashScope-Async: enable`
         {"model", "input": {"prompt", "img_url"?}, "parameters": {"size" | "resolution", "duration"}}
         -> {"output": {"task_id", "task_status": "PENDING"}}
    GET  {base}/api/v1/tasks/{task_id}      -> output.task_status PENDING | RUNNING | SUCCEEDED | FAILED
                                               | CANCELED | UNKNOWN, and output.video_url when it succeeded

Base URL `https://dashscope-intl.aliyuncs.com` (Singapore) or `https://dashscope.aliyuncs.com` (China), the
key as a Bearer token. Text-to-video takes `size` as `1280*720`; image-to-video takes the image (a data
URI) and a `resolution` tier. Wan makes 5 or 10 s; sound on wan2.5+ models is the `audio` parameter. Input
or output its data inspection refuses (`DataInspectionFailed`) is `content_policy_violation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, moderated
from reelgate.backends.relay.jobs import JobRequest
from reelgate.backends.relay.makes import Makes, by_model_name
from reelgate.backends.relay.task_api import TaskApi, data_uri

#: The durations one Wan call makes.
DURATIONS = (5, 10)
MODERATION_CODES: frozenset[object] = frozenset({"DataInspectionFailed", "IPInfringementSuspect"})
_PHASES = {
    "PENDING": JobPhase.QUEUED,
    "RUNNING": JobPhase.RUNNING,
    "SUCCEEDED": JobPhase.COMPLETED,
    "FAILED": JobPhase.FAILED,
    "CANCELED": JobPhase.FAILED,
    "UNKNOWN": JobPhase.FAILED,  # Model Studio's word for a task it no longer knows (expired)
}


class DashScope(TaskApi):
    name = "Model Studio"
    can_make = Makes(tiers=("480p", "720p", "1080p"))

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        """A Wan `-t2v-` model makes videos from text only, an `-i2v-` one from an image only."""
        return by_model_name(self.can_make, model)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        url = exchange.upstream.url("api/v1/services/aigc/video-generation/video-synthesis")
        try:
            body, _ = await exchange.json("POST", url, headers={"X-DashScope-Async": "enable"}, json=await payload(job))
        except UpstreamError as exc:
            raise moderated(exc, MODERATION_CODES.__contains__) from exc
        output = body.get("output") if isinstance(body, dict) else None
        return self.job_id(output.get("task_id") if isinstance(output, dict) else None, "task_id")

    def status_path(self, job_id: str) -> str:
        return f"api/v1/tasks/{quote(job_id, safe='')}"

    def read(self, body: object) -> JobDocument:
        return read_task(body)


async def payload(job: JobRequest) -> dict[str, Any]:
    """`size` as `W*H` for text-to-video; the image as a data URI and a resolution tier for image-to-video."""
    parameters: dict[str, Any] = {"duration": job.seconds}
    text: dict[str, Any] = {"prompt": job.prompt}
    if job.image is None:
        parameters["size"] = job.size.replace("x", "*")
    else:
        text["img_url"] = await data_uri(job.image)
        parameters["resolution"] = tier(job.size)
    return {"model": job.model, "input": text, "parameters": {**parameters, **job.parameters}}


def tier(size: str) -> str:
    """Model Studio's resolution tier for a size (`"720P"`), or the catalog's own (`sizes = {..."1080P"}`)."""
    if size.upper().endswith("P"):
        return size.upper()
    shorter = min(int(side) for side in size.split("x"))
    return "1080P" if shorter >= 1080 else "720P" if shorter >= 720 else "480P"


def read_task(body: object) -> JobDocument:
    output = body.get("output") if isinstance(body, dict) else None
    status = output.get("task_status") if isinstance(output, dict) else None
    if not isinstance(output, dict) or status not in _PHASES:
        raise UpstreamError("Model Studio's task answer has no known task_status", retryable=True)
    phase = _PHASES[status]
    if phase is JobPhase.FAILED:
        code = output.get("code")
        return JobDocument(
            phase,
            error_code="content_policy_violation" if code in MODERATION_CODES else "upstream_failed",
            error_message=clip(str(output.get("message") or f"Model Studio ended the task {status}.")),
        )
    video = output.get("video_url")
    return JobDocument(phase, video_urls=(video,) if isinstance(video, str) and video else ())
