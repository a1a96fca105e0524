"""`POST /v1/videos/extensions` (`client.videos.extend`): a completed video continued by the prompt.

The new task's first seconds are the source video's, and `seconds` more follow it; it is priced by those
new seconds only. The source (see `api/sources.py`) is `{"id": ...}` of a completed video of the same key
(JSON, or the `video[id]` form field the `openai` package sends), or an uploaded MP4/MOV: it is then
stored as the task's `input_video`, its duration (rounded to whole seconds) opens the video, and the
model is `model` (`sora-2` by default) at its size of the upload's orientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from reelgate.api.auth import check_model_access, current_key
from reelgate.api.deps import runtime
from reelgate.api.openapi import BODY_ERRORS, contract
from reelgate.api.schemas import EXTENSION_SECONDS, VideoExtend, VideoExtendForm, VideoObject
from reelgate.api.sources import (
    check_stored,
    digest,
    orientation_of,
    read_source_upload,
    source_fields,
    source_id,
    source_model,
    uploaded,
)
from reelgate.api.videos import _admitted, _prompt
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry
from reelgate.errors import InvalidRequest
from reelgate.prompt import PromptSpec
from reelgate.runtime import Runtime
from reelgate.tasks.dedupe import check_idempotency_key, request_hash
from reelgate.tasks.models import Task
from reelgate.tasks.service import Admission, Submission

router = APIRouter(prefix="/v1/videos", tags=["videos"])

Key = Annotated[ApiKey, Depends(current_key)]

FIELDS = {"prompt", "seconds", "video", "video[id]", "model"}

#: The longest video extensions may make: OpenAI's limit (six extensions of up to 20 s, 120 s in all). Each
#: extension renders or joins the whole source again, so without it a chain grows without end.
MAX_EXTENDED_SECONDS = 120


@router.post("/extensions", **contract(VideoObject, BODY_ERRORS, json=VideoExtend, form=VideoExtendForm))
async def extend_video(request: Request, key: Key) -> JSONResponse:
    rt = runtime(request)
    async with source_fields(request, rt.settings, FIELDS) as fields:
        prompt = _prompt(fields.get("prompt"))
        seconds = extension_seconds(fields.get("seconds"))
        upload = uploaded(fields)
        idempotency_key = check_idempotency_key(request.headers.get("idempotency-key"))
        ask = Extension(key, prompt, seconds, idempotency_key)
        if upload is not None:
            admission = await _extend_upload(rt, ask, fields, upload)
        else:
            admission = await _extend_video(rt, ask, fields)
    return _admitted(request, admission)


@dataclass(frozen=True)
class Extension:
    key: ApiKey
    prompt: str
    seconds: int
    idempotency_key: str | None


async def _extend_video(rt: Runtime, ask: Extension, fields: dict[str, Any]) -> Admission:
    source = await rt.tasks.remix_parent(ask.key, source_id(fields), param="video", verb="extend")
    check_continuable(source, ask.seconds, "video")
    entry = _ready(rt, ask.key, source_model(rt, fields, source.model))
    check_source(rt, entry, source.backend_state, "video")
    return await rt.tasks.submit(
        Submission(
            ask.key,
            entry,
            PromptSpec(ask.prompt, source.orientation, explicit_orientation=True),
            request_hash=request_hash(ask.key.id, entry.name, ["extend", source.id, str(ask.seconds), ask.prompt]),
            idempotency_key=ask.idempotency_key,
            seconds=ask.seconds,
            size=(source.width, source.height),
            extend_of=source,
            join_running=False,
        )
    )


async def _extend_upload(rt: Runtime, ask: Extension, fields: dict[str, Any], upload: UploadFile) -> Admission:
    entry = _ready(rt, ask.key, source_model(rt, fields))
    check_source(rt, entry, None, "video")
    video = await read_source_upload(upload, rt.settings)
    try:
        orientation = orientation_of(video)
        fingerprint = ["extend", await digest(video.path), str(ask.seconds), ask.prompt]
        return await rt.tasks.submit(
            Submission(
                ask.key,
                entry,
                PromptSpec(ask.prompt, orientation, explicit_orientation=True),
                request_hash=request_hash(ask.key.id, entry.name, fingerprint),
                idempotency_key=ask.idempotency_key,
                seconds=ask.seconds,
                size=entry.size_for(orientation),
                source_video=video.path,
                lead_seconds=max(1, round(video.seconds)),
                join_running=False,
            )
        )
    finally:
        video.discard()


def _ready(rt: Runtime, key: ApiKey, entry: ModelEntry) -> ModelEntry:
    check_model_access(key, entry.name)
    check_extendable(rt, entry, "video")
    rt.require_ready(entry)
    return entry


def check_extendable(rt: Runtime, entry: ModelEntry, param: str) -> None:
    """400 naming the model when its backend cannot continue a video (`can_extend`: procedural, diffusers with
    an image-to-video pipeline, and relays whose upstream has an extension call)."""
    if not getattr(rt.backends.get(entry.backend), "can_extend", False):
        raise InvalidRequest(f"The model `{entry.name}` cannot extend videos.", param=param)


def check_continuable(source: Task, seconds: int, param: str) -> None:
    """400 when the source cannot be continued by `seconds`: its files were deleted (retention), which would
    only fail the charged task, or the result would be longer than `MAX_EXTENDED_SECONDS`."""
    check_stored(source, "extend", param)
    if source.seconds + seconds > MAX_EXTENDED_SECONDS:
        raise InvalidRequest(
            f"Cannot extend '{source.id}' by {seconds} seconds: it is {source.seconds} seconds long, and an "
            f"extended video is at most {MAX_EXTENDED_SECONDS} seconds.",
            param=param,
            code="invalid_value",
        )


def check_source(rt: Runtime, entry: ModelEntry, backend_state: str | None, param: str) -> None:
    """400 naming the model when its backend extends videos, but not this one: a relay extends only a video
    its upstream made and still names (`backend_state`: the source task's note; None for an upload)."""
    refusal = getattr(rt.backends.get(entry.backend), "extension_refusal", None)
    reason = refusal(entry.name, backend_state) if refusal is not None else None
    if reason is not None:
        raise InvalidRequest(f"The model `{entry.name}` cannot extend this video: {reason}", param=param)


def extension_seconds(value: object, param: str = "seconds") -> int:
    """The seconds an extension adds: one of `EXTENSION_SECONDS` (a string, as OpenAI's API takes it)."""
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if str(value) not in EXTENSION_SECONDS or (param == "seconds" and not isinstance(value, str)):
        raise InvalidRequest(
            f"Invalid value for '{param}': an extension adds {', '.join(EXTENSION_SECONDS)} seconds.",
            param=param,
            code="invalid_value",
        )
    return int(str(value))
