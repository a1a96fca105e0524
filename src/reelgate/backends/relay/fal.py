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

The reference image goes to fal's CDN first, as fal's clients upload files
(https://fal.ai/docs/documentation/model-apis/fal-cdn; fal-js `storage.ts`): `POST
https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3` with the key and `{"file_name",
"content_type"}` names a signed `upload_url` and the file's `file_url`; the bytes are PUT to the former
(no key: another host), and `{image}` is the latter, which every fal app takes (data URIs only some).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reelgate.backends.relay.auth import headers_for
from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip
from reelgate.backends.relay.jobs import JobRequest, Outcome
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.replicate import MODERATION_WORDS, inputs, takes_image
from reelgate.backends.relay.task_api import TaskApi
from reelgate.backends.relay.upstream import Upstream
from reelgate.errors import GenerationError

DEFAULT_INPUT = {"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{ratio}", "image_url": "{image}"}
#: fal's queue, and its REST API beside it where files are uploaded.
QUEUE_BASE = "https://queue.fal.run"
REST_BASE = "https://rest.fal.ai"
INITIATE = "storage/upload/initiate?storage_type=fal-cdn-v3"
_PHASES = {"IN_QUEUE": JobPhase.QUEUED, "IN_PROGRESS": JobPhase.RUNNING, "COMPLETED": JobPhase.COMPLETED}


class Fal(TaskApi):
    name = "fal"
    noun = "request"

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        return takes_image(parameters or DEFAULT_INPUT)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        url = exchange.upstream.url(quote(job.model, safe="/"))
        image = await upload(exchange, job.image) if job.image is not None else None
        body, _ = await exchange.json("POST", url, json=await inputs(job, DEFAULT_INPUT, image))
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


async def upload(exchange: Exchange, image: Path) -> str:
    """The reference image (a PNG) on fal's CDN: its `file_url`, for the model's input."""
    url, headers = storage(exchange.upstream)
    answer = {"file_name": "reference.png", "content_type": "image/png"}
    body, _ = await exchange.json("POST", url, headers=headers, json=answer)
    if not isinstance(body, dict) or not all(isinstance(body.get(name), str) for name in ("upload_url", "file_url")):
        raise UpstreamError("fal's storage named no upload_url and file_url", retryable=True)
    data = await asyncio.to_thread(image.read_bytes)
    await exchange.send("PUT", body["upload_url"], content=data, headers={"Content-Type": "image/png"})
    return str(body["file_url"])


def storage(upstream: Upstream) -> tuple[str, dict[str, str]]:
    """Where an upload starts, and the key for it: fal's REST host beside its queue (fal's own, so it
    gets the key, which only the queue's origin gets by itself), or the base URL of a proxy or fake."""
    if upstream.config.base_url != QUEUE_BASE:
        return upstream.url(INITIATE), {}
    secret = upstream.api_key.get_secret_value() if upstream.api_key else None
    return f"{REST_BASE}/{INITIATE}", headers_for("fal", secret) if secret else {}


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
