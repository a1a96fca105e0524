"""Reading an upstream's job document: OpenAI's Video object and the many shapes that imitate it.

    {"id": "video_123", "status": "in_progress", "progress": 42}                 OpenAI
    {"code": "success", "data": {"status": "SUCCESS", "progress": "100%", ...}}   new-api style
    {"id": "task_...", "status": "completed", "video_url": "https://..."}         reelgate's /source

Statuses and their common synonyms map to four phases; progress may be a number, a fraction or "42%".
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reelgate.backends.relay.faults import UpstreamError, clip, message_of

log = logging.getLogger(__name__)


class JobPhase(StrEnum):
    QUEUED = "queued"  #: accepted, waiting upstream
    RUNNING = "running"  #: being generated upstream
    COMPLETED = "completed"  #: finished; the result can be downloaded
    FAILED = "failed"  #: ended without a video (failed, cancelled, expired, rejected)


_SYNONYMS: dict[str, JobPhase] = {
    **dict.fromkeys(
        ("queued", "pending", "submitted", "waiting", "created", "not_start", "not_started", "in_queue", "scheduled"),
        JobPhase.QUEUED,
    ),
    **dict.fromkeys(("processing", "running", "in_progress", "generating", "started", "rendering"), JobPhase.RUNNING),
    **dict.fromkeys(
        ("completed", "complete", "succeeded", "success", "successful", "done", "finished"), JobPhase.COMPLETED
    ),
    **dict.fromkeys(
        ("failed", "failure", "error", "errored", "cancelled", "canceled", "expired", "rejected", "timeout"),
        JobPhase.FAILED,
    ),
}

_VIDEO_KEYS = ("video_url", "url", "download_url", "result_url", "output", "result", "videos")
_THUMBNAIL_KEYS = ("thumbnail_url", "thumbnail", "cover_url", "poster_url", "poster")


def phase_of(status: str) -> JobPhase:
    """`"SUCCEEDED"` -> COMPLETED; an unknown status counts as still running (the deadline bounds it)."""
    phase = _SYNONYMS.get(re.sub(r"[\s-]+", "_", status.strip().lower()))
    if phase is None:
        _unknown(status)
        return JobPhase.RUNNING
    return phase


@functools.cache
def _unknown(status: str) -> None:
    # Cached: said once per status word, not on every poll of every job.
    log.warning("unknown upstream status %r; taken as still running", status)


def percent(value: object) -> int | None:
    """Progress as a whole percentage: `42` -> 42, `0.5` -> 50, `"42%"` -> 42, anything else None."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*+(\d++(?:\.\d++)?+)\s*+%?+\s*+", value)
        return percent(float(match.group(1))) if match else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and 0 < value < 1:
        value *= 100
    return max(0, min(100, int(value)))


@dataclass(frozen=True)
class JobDocument:
    phase: JobPhase
    progress: int | None = None
    id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    video_urls: tuple[str, ...] = ()
    thumbnail_urls: tuple[str, ...] = ()


def read_job(body: object) -> JobDocument:
    """The job a decoded JSON body describes; a retryable UpstreamError when it has no status."""
    job = job_object(body)
    status = job.get("status") if job is not None else None
    if job is None or not isinstance(status, str) or not status.strip():
        raise UpstreamError("the upstream's job document has no status", retryable=True)
    error = job.get("error")
    return JobDocument(
        phase=phase_of(status),
        progress=percent(job.get("progress")),
        id=_text(job.get("id")) or _text(job.get("task_id")),
        error_code=_text(error.get("code")) if isinstance(error, dict) else None,
        error_message=clip(message_of(error) or _text(job.get("fail_reason")) or _text(job.get("message")) or "")
        or None,
        video_urls=tuple(_urls(job, _VIDEO_KEYS)),
        thumbnail_urls=tuple(_urls(job, _THUMBNAIL_KEYS)),
    )


def job_object(body: object) -> dict[str, Any] | None:
    """The object holding `status`: the body itself, or its `data` (gateways wrap their answers)."""
    if not isinstance(body, dict):
        return None
    if "status" not in body and isinstance(body.get("data"), dict):
        return job_object(body["data"])
    return body


def _urls(job: dict[str, Any], keys: tuple[str, ...]) -> Iterator[str]:
    for key in keys:
        yield from _links(job.get(key))
    if isinstance(job.get("data"), dict):  # new-api keeps the result one level further down
        yield from _urls(job["data"], keys)


def _links(value: object) -> Iterator[str]:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        yield value
    elif isinstance(value, dict):
        yield from _links(value.get("url") or value.get("video_url"))
    elif isinstance(value, list):
        for item in value:
            yield from _links(item)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
