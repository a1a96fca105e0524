"""The `ark` protocol: Seedance on Volcengine Ark / BytePlus ModelArk content generation tasks
(https://www.volcengine.com/docs/82379/1520757, create; https://www.volcengine.com/docs/82379/1521309, get).

    POST {base}/api/v3/contents/generations/tasks      {"model", "content": [text (+ image_url)]} -> {"id"}
    GET  {base}/api/v3/contents/generations/tasks/{id} -> status queued | running | succeeded | failed
                                                          | cancelled, content.video_url, error

Base URL `https://ark.cn-beijing.volces.com` (`https://ark.ap-southeast.bytepluses.com` on BytePlus), the
key as a Bearer token. Ratio, duration and resolution travel as the text's flags (`--ratio 9:16
--duration 5 --resolution 720p`), as the API reads them; more flags come from the catalog's `parameters`
(`{ camerafixed = "false", watermark = "false" }`). Seedance makes 3 to 12 s. Input or output its
safety system flags (`...SensitiveContentDetected`) is `content_policy_violation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase, phase_of
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip, message_of, moderated
from reelgate.backends.relay.jobs import JobRequest
from reelgate.backends.relay.makes import Makes, by_model_name
from reelgate.backends.relay.task_api import TaskApi, data_uri

#: The durations one Seedance call makes.
DURATIONS = tuple(range(3, 13))
TASKS = "api/v3/contents/generations/tasks"


def flagged(code: object) -> bool:
    """Ark's safety codes: `InputTextSensitiveContentDetected`, `OutputVideoSensitiveContentDetected`, ..."""
    return isinstance(code, str) and code.endswith("SensitiveContentDetected")


class Ark(TaskApi):
    name = "Ark"
    can_make = Makes(tiers=("480p", "720p", "1080p"))

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        """Seedance `-lite-t2v` makes videos from text only, `-lite-i2v` from an image only; `-pro` both."""
        return by_model_name(self.can_make, model)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        try:
            body, _ = await exchange.json("POST", exchange.upstream.url(TASKS), json=await payload(job))
        except UpstreamError as exc:
            raise moderated(exc, flagged) from exc
        return self.job_id(body.get("id") if isinstance(body, dict) else None, "task id")

    def status_path(self, job_id: str) -> str:
        return f"{TASKS}/{quote(job_id, safe='')}"

    def read(self, body: object) -> JobDocument:
        return read_task(body)


async def payload(job: JobRequest) -> dict[str, Any]:
    """The prompt with Seedance's flags, then the first frame as a data URI when there is one."""
    flags = {
        "ratio": "9:16" if job.orientation is Orientation.PORTRAIT else "16:9",
        "duration": job.seconds,
        "resolution": resolution(job.size),
        **job.parameters,
    }
    if job.image is not None:
        flags.pop("ratio")  # the image's own ratio ("adaptive")
    text = " ".join([job.prompt, *(f"--{name} {value}" for name, value in flags.items())])
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if job.image is not None:
        content.append({"type": "image_url", "image_url": {"url": await data_uri(job.image)}})
    return {"model": job.model, "content": content}


def resolution(size: str) -> str:
    """`480p` / `720p` / `1080p`: the catalog's (`sizes`), else from the size's shorter side."""
    if size.endswith("p"):
        return size
    shorter = min(int(side) for side in size.split("x"))
    return "1080p" if shorter >= 1080 else "720p" if shorter >= 720 else "480p"


def read_task(body: object) -> JobDocument:
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(status, str) or not status:
        raise UpstreamError("Ark's task answer has no status", retryable=True)
    phase = phase_of(status)
    if phase is JobPhase.FAILED:
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return JobDocument(
            phase,
            error_code="content_policy_violation" if flagged(code) else "upstream_failed",
            error_message=clip(message_of(error) or f"Ark ended the task {status}."),
        )
    video = (body.get("content") or {}).get("video_url")
    return JobDocument(phase, video_urls=(video,) if isinstance(video, str) and video else ())
