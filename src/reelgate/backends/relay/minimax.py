"""The `minimax` protocol: MiniMax Hailuo video generation (https://platform.minimax.io/docs/api-reference/video-generation-t2v).

    POST {base}/v1/video_generation                       {"model", "prompt", "duration", "resolution",
                                                           "first_frame_image"?} -> {"task_id", "base_resp"}
    GET  {base}/v1/query/video_generation?task_id=...     status Preparing | Queueing | Processing | Success
                                                          | Fail, and `file_id` once it succeeded
    GET  {base}/v1/files/retrieve?file_id=...             -> file.download_url (on MiniMax's storage)

Base URL `https://api.minimax.io` (`https://api.minimaxi.com` in China), the key as a Bearer token.
MiniMax answers errors with HTTP 200 and `base_resp.status_code`: 1002 (rate limit) and 1000/1001/1013
(its own trouble) are retried, 1026/1027 (sensitive input or output) are `content_policy_violation`.
Hailuo 02 makes 6 or 10 s at 768P or 1080P.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reelgate.backends.base import Orientation
from reelgate.backends.relay.documents import JobDocument, JobPhase
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError, clip
from reelgate.backends.relay.jobs import JobRequest, Outcome
from reelgate.backends.relay.makes import Makes, by_model_name
from reelgate.backends.relay.task_api import TaskApi, data_uri

#: The durations one Hailuo call makes.
DURATIONS = (6, 10)
MODERATION_CODES = frozenset({1026, 1027})
RETRYABLE_CODES = frozenset({1000, 1001, 1002, 1013})
_PHASES = {
    "Preparing": JobPhase.QUEUED,
    "Queueing": JobPhase.QUEUED,
    "Processing": JobPhase.RUNNING,
    "Success": JobPhase.COMPLETED,
    "Fail": JobPhase.FAILED,
}


class MiniMax(TaskApi):
    name = "MiniMax"
    #: No aspect ratio is sent: from text Hailuo makes 16:9 (1366x768 or 1920x1080), from an image its ratio.
    can_make = Makes(orientations=(Orientation.LANDSCAPE,), tiers=("768p", "1080p"))

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        """`T2V-01` makes videos from text only, `I2V-01` from an image only; Hailuo 02 both."""
        return by_model_name(self.can_make, model)

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        body = await _call(exchange, "POST", "v1/video_generation", json=await payload(job))
        return self.job_id(body.get("task_id"), "task_id")

    def status_path(self, job_id: str) -> str:
        return f"v1/query/video_generation?task_id={quote(job_id, safe='')}"

    def read(self, body: object) -> JobDocument:
        return read_task(body)

    async def deliver(self, exchange: Exchange, job_id: str, doc: JobDocument) -> Outcome:
        """A finished task names a file; files/retrieve gives its download link."""
        assert doc.id is not None  # read_task names the file of a finished task
        retrieve = f"v1/files/retrieve?file_id={quote(doc.id, safe='')}"
        body = await exchange.upstream.retry.run(lambda: _call(exchange, "GET", retrieve), "file retrieve")
        link = (body.get("file") or {}).get("download_url")
        return Outcome(video_urls=(link,) if isinstance(link, str) and link else ())


async def _call(exchange: Exchange, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """The answer's JSON object; its `base_resp` error as an UpstreamError."""
    body, _ = await exchange.json(method, exchange.upstream.url(path), **kwargs)
    if not isinstance(body, dict):
        raise UpstreamError("MiniMax's answer is not an object", retryable=True)
    check(body)
    return body


def check(body: dict[str, Any]) -> None:
    status = body.get("base_resp") or {}
    code, message = status.get("status_code", 0), clip(str(status.get("status_msg") or ""))
    if code == 0:
        return
    error = UpstreamError(f"MiniMax {code}: {message}", retryable=code in RETRYABLE_CODES)
    if code in MODERATION_CODES:
        error.code = "content_policy_violation"
        error.unhealthy = False
    elif code not in RETRYABLE_CODES and code not in (1004, 1008):  # bad key, no balance: the account
        error.unhealthy = False
    raise error


async def payload(job: JobRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": job.model,
        "prompt": job.prompt,
        "duration": job.seconds,
        "resolution": resolution(job.size),
    }
    if job.image is not None:
        body["first_frame_image"] = await data_uri(job.image)
    return {**body, **job.parameters}


def resolution(size: str) -> str:
    """`768P` / `1080P`: the catalog's (`sizes`), else from the size's shorter side."""
    if size.upper().endswith("P"):
        return size.upper()
    return "1080P" if min(int(side) for side in size.split("x")) >= 1080 else "768P"


def read_task(body: object) -> JobDocument:
    if not isinstance(body, dict):
        raise UpstreamError("MiniMax's task answer is not an object", retryable=True)
    try:
        check(body)
    except UpstreamError as exc:
        if exc.code is None:
            raise
        return JobDocument(JobPhase.FAILED, error_code=exc.code, error_message=exc.message)
    phase = _PHASES.get(str(body.get("status")))
    if phase is None:
        raise UpstreamError("MiniMax's task answer has no known status", retryable=True)
    if phase is JobPhase.FAILED:
        return JobDocument(phase, error_code="upstream_failed", error_message="MiniMax could not generate this video.")
    file_id = body.get("file_id")
    if phase is JobPhase.COMPLETED and not file_id:
        raise UpstreamError("MiniMax's finished task names no file", retryable=True)
    return JobDocument(phase, id=str(file_id) if file_id else None)
