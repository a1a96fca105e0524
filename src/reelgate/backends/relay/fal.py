"""The `fal` protocol: any video model on fal's queue (https://fal.ai/docs/documentation/model-apis/inference/queue,
https://fal.ai/docs/api-reference/inference-api).

    POST {base}/{model id}                              the model's input -> {"request_id", "status": "IN_QUEUE"}
    GET  {base}/{owner}/{app}/requests/{id}/status      status IN_QUEUE | IN_PROGRESS | COMPLETED
    GET  {base}/{owner}/{app}/requests/{id}             the result: {"video": {"url"}} (an error if it failed)

Base URL `https://queue.fal.run`, the key as `Authorization: Key KEY` (auth.py), never sent to the result's
host. Status and result use only the model id's owner and app (`fal-ai/kling-video/v2.1/pro/image-to-video`
is polled under `fal-ai/kling-video`). The catalog's `parameters` is the model's input, templates as for
`replicate` (`{prompt}`, `{seconds}`, `{ratio}`, `{size}`, `{image}`); without them: prompt, duration,
aspect_ratio and (with an image) image_url. A result refused for its content is `content_policy_violation`.
"""

from __future__ import annotations

from urllib.parse import quote

from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip
from reelgate.backends.relay.jobs import JobRequest, Outcome
from reelgate.backends.relay.replicate import MODERATION_WORDS, inputs
from reelgate.backends.relay.task_api import TaskApi
from reelgate.errors import GenerationError

DEFAULT_INPUT = {"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{ratio}", "image_url": "{image}"}
_PHASES = {"IN_QUEUE": JobPhase.QUEUED, "IN_PROGRESS": JobPhase.RUNNING, "COMPLETED": JobPhase.COMPLETED}


class Fal(TaskApi):
    name = "fal"
    noun = "request"

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        url = exchange.upstream.url(quote(job.model, safe="/"))
        body, _ = await exchange.json("POST", url, json=await inputs(job, DEFAULT_INPUT))
        request_id = self.job_id(body.get("request_id") if isinstance(body, dict) else None, "request_id")
        owner, _, rest = job.model.partition("/")
        app = rest.split("/", 1)[0]
        return f"{owner}/{app}/requests/{request_id}"  # the request's own path: all a restart needs

    def status_path(self, job_id: str) -> str:
        return f"{quote(job_id, safe='/')}/status"

    def read(self, body: object) -> JobDocument:
        return read_status(body)

    async def deliver(self, exchange: Exchange, job_id: str, doc: JobDocument) -> Outcome:
        """The result of a completed request: its video, or the model's error."""
        path = exchange.upstream.url(quote(job_id, safe="/"))
        try:
            body, _ = await exchange.upstream.retry.run(lambda: exchange.json("GET", path), "result")
        except UpstreamError as exc:
            if exc.retryable:
                raise
            message = clip(exc.message)
            moderated = any(word in message.lower() for word in MODERATION_WORDS)
            raise GenerationError(message, code="content_policy_violation" if moderated else "upstream_failed") from exc
        return Outcome(video_urls=result_urls(body))


def read_status(body: object) -> JobDocument:
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(body, dict) or status not in _PHASES:
        raise UpstreamError("fal's status answer has no known status", retryable=True)
    return JobDocument(_PHASES[status])


def result_urls(body: object) -> tuple[str, ...]:
    """`video.url` (or each of `videos[].url`) of a result."""
    if not isinstance(body, dict):
        return ()
    videos = [body.get("video"), *(body.get("videos") or [])]
    return tuple(v["url"] for v in videos if isinstance(v, dict) and isinstance(v.get("url"), str))
