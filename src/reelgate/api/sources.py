"""The source video of an edit or an extension, as the `openai` package sends it: a video of the key, or a file.

    JSON       {"prompt", "video": {"id": "task_..."}}        the key's completed video
    multipart  prompt, video[id]=task_...                     the same (what `client.videos.edit` sends)
    multipart  prompt, video=<an MP4 or MOV file>[, model]    an upload, checked by `inputs/videos.py`

A multipart body is streamed (the file spools to disk) under `video_upload_max_bytes`; anything else is
read under `max_body_bytes`. An uploaded file's model is `model` (`sora-2` by default); a video id brings
its own, and a `model` naming another is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.datastructures import UploadFile

from reelgate.api.body import read_json_object, read_streamed_form
from reelgate.api.schemas import DEFAULT_VIDEO_MODEL
from reelgate.backends.base import Orientation
from reelgate.catalog import ModelEntry
from reelgate.errors import InvalidRequest
from reelgate.runtime import Runtime
from reelgate.settings import Settings
from reelgate.tasks.models import Task

if TYPE_CHECKING:
    from reelgate.inputs.videos import UploadedVideo

#: Room for the form's other fields and multipart framing around the largest file.
FORM_SLACK = 64 * 1024


@asynccontextmanager
async def source_fields(
    request: Request, settings: Settings, allowed: Collection[str]
) -> AsyncIterator[dict[str, Any]]:
    """The request's fields (an uploaded file as Starlette's `UploadFile`), unknown ones refused; the
    form's temporary file is closed on leaving."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        yield _known(await read_json_object(request, settings.max_body_bytes), allowed)
        return
    limit = max(settings.max_body_bytes, settings.video_upload_max_bytes + FORM_SLACK)
    form = await read_streamed_form(request, limit)
    try:
        yield _known(dict(form.multi_items()), allowed)
    finally:
        await form.close()


def _known(fields: dict[str, Any], allowed: Collection[str]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidRequest(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    return fields


def uploaded(fields: dict[str, Any]) -> UploadFile | None:
    """The uploaded source file, or None when the source is a video id."""
    video = fields.get("video")
    if not isinstance(video, UploadFile):
        return None
    if fields.get("video[id]") is not None:
        raise InvalidRequest("Pass either a video file or video[id], not both.", param="video", code="invalid_value")
    return video


def source_id(fields: dict[str, Any]) -> str:
    """The id of the key's video named by `video[id]` or `{"video": {"id": ...}}`."""
    value = fields.get("video[id]")
    video = fields.get("video")
    if value is None and isinstance(video, dict):
        value = video.get("id")
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            'Missing or invalid \'video\': pass {"id": "<a completed video>"} or upload an MP4 or MOV file.',
            param="video",
            code="missing_required_parameter" if video is None and value is None else "invalid_value",
        )
    return value.strip()


def check_stored(source: Task, verb: str, param: str) -> None:
    """400 when retention deleted the source's files: its task would only fail (charged) without them."""
    if source.video_file is None or source.files_expired:
        raise InvalidRequest(f"Cannot {verb} '{source.id}': its files were deleted.", param=param)


def source_model(rt: Runtime, fields: dict[str, Any], of_source: str | None = None) -> ModelEntry:
    """The model that makes the video: the source video's (a `model` must then name the same one), or for
    an uploaded file the `model` asked for, `sora-2` by default."""
    asked = fields.get("model")
    if asked is not None and not isinstance(asked, str):
        raise InvalidRequest("'model' must be a string.", param="model", code="invalid_type")
    if of_source is None:
        return rt.catalog.get(asked or DEFAULT_VIDEO_MODEL)
    entry = rt.catalog.get(of_source)
    if asked is not None and rt.catalog.get(asked).name != entry.name:
        raise InvalidRequest(
            f"The source video was made by `{entry.name}`, which makes this video too; leave out 'model'.",
            param="model",
            code="invalid_value",
        )
    return entry


async def read_source_upload(upload: UploadFile, settings: Settings) -> UploadedVideo:
    from reelgate.inputs.videos import read_upload  # PyAV loads only where a video is read

    return await read_upload(upload, settings, "video")


def orientation_of(video: UploadedVideo) -> Orientation:
    """A square video counts as landscape, as a square size does everywhere."""
    return Orientation.PORTRAIT if video.height > video.width else Orientation.LANDSCAPE


async def digest(path: Path) -> str:
    """The file's SHA-256, for telling a repeated request from a new one."""

    def read() -> str:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    return await asyncio.to_thread(read)
