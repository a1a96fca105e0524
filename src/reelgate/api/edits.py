"""`POST /v1/videos/edits` (`client.videos.edit`): a new video from a source, changed as the prompt says,
keeping the source's timing and framing.

The source (see `api/sources.py`) is a completed video of the same key, whose model, seconds and size
the edit keeps (`edited_from_video_id`), or an uploaded MP4/MOV (stored as the task's `input_video`):
then the model is `model` (`sora-2` by default), the size the model's size of the upload's orientation,
and the seconds the model's duration nearest the upload's, within `SECONDS_SLACK`, else a 400. Priced
like a new video of that length; a model whose backend cannot edit is a 400 naming it.
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
from reelgate.api.schemas import VideoEdit, VideoEditForm, VideoObject
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
from reelgate.backends.base import can_edit
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry
from reelgate.errors import InvalidRequest
from reelgate.prompt import PromptSpec
from reelgate.runtime import Runtime
from reelgate.tasks.dedupe import check_idempotency_key, request_hash
from reelgate.tasks.service import Admission, Submission

router = APIRouter(prefix="/v1/videos", tags=["videos"])

Key = Annotated[ApiKey, Depends(current_key)]

FIELDS = {"prompt", "video", "video[id]", "model"}

#: How far an uploaded video's duration may be from the model's nearest duration (the edit is cut there,
#: or holds the source's last frame).
SECONDS_SLACK = 1.0


@router.post("/edits", **contract(VideoObject, BODY_ERRORS, json=VideoEdit, form=VideoEditForm))
async def edit_video(request: Request, key: Key) -> JSONResponse:
    rt = runtime(request)
    async with source_fields(request, rt.settings, FIELDS) as fields:
        upload = uploaded(fields)
        ask = Edit(key, _prompt(fields.get("prompt")), check_idempotency_key(request.headers.get("idempotency-key")))
        if upload is not None:
            admission = await _edit_upload(rt, ask, fields, upload)
        else:
            admission = await _edit_video(rt, ask, fields)
    return _admitted(request, admission)


@dataclass(frozen=True)
class Edit:
    key: ApiKey
    prompt: str
    idempotency_key: str | None


async def _edit_video(rt: Runtime, ask: Edit, fields: dict[str, Any]) -> Admission:
    source = await rt.tasks.remix_parent(ask.key, source_id(fields), param="video", verb="edit")
    check_stored(source, "edit", "video")
    entry = _ready(rt, ask.key, source_model(rt, fields, source.model))
    return await rt.tasks.submit(
        Submission(
            ask.key,
            entry,
            PromptSpec(ask.prompt, source.orientation, explicit_orientation=True),
            request_hash=request_hash(ask.key.id, entry.name, ["edit", source.id, ask.prompt]),
            idempotency_key=ask.idempotency_key,
            seconds=source.seconds,
            size=(source.width, source.height),
            edit_of=source,
            join_running=False,
        )
    )


async def _edit_upload(rt: Runtime, ask: Edit, fields: dict[str, Any], upload: UploadFile) -> Admission:
    entry = _ready(rt, ask.key, source_model(rt, fields))
    video = await read_source_upload(upload, rt.settings)
    try:
        orientation = orientation_of(video)
        seconds = upload_seconds(entry, video.seconds)
        return await rt.tasks.submit(
            Submission(
                ask.key,
                entry,
                PromptSpec(ask.prompt, orientation, explicit_orientation=True),
                request_hash=request_hash(ask.key.id, entry.name, ["edit", await digest(video.path), ask.prompt]),
                idempotency_key=ask.idempotency_key,
                seconds=seconds,
                size=entry.size_for(orientation),
                source_video=video.path,
                join_running=False,
            )
        )
    finally:
        video.discard()


def _ready(rt: Runtime, key: ApiKey, entry: ModelEntry) -> ModelEntry:
    check_model_access(key, entry.name)
    check_editable(rt, entry, "video")
    rt.require_ready(entry)
    return entry


def check_editable(rt: Runtime, entry: ModelEntry, param: str) -> None:
    """400 naming the model when its backend cannot edit videos."""
    if not can_edit(rt.backends.get(entry.backend), entry.name):
        raise InvalidRequest(f"The model `{entry.name}` cannot edit videos.", param=param)


def upload_seconds(entry: ModelEntry, seconds: float) -> int:
    """The model's duration nearest an uploaded video's `seconds`; 400 when none is within `SECONDS_SLACK`.

    >>> from reelgate.catalog import Catalog
    >>> upload_seconds(Catalog.build({}).get("sora-2"), 4.4)
    4
    """
    nearest = min(entry.allowed_seconds, key=lambda allowed: abs(allowed - seconds))
    if abs(nearest - seconds) > SECONDS_SLACK:
        choices = ", ".join(str(allowed) for allowed in entry.allowed_seconds)
        raise InvalidRequest(
            f"The uploaded video is {seconds:.1f} seconds long; `{entry.name}` makes videos of {choices} seconds, "
            f"so an edit needs a video within {SECONDS_SLACK:g} second of one of them.",
            param="video",
            code="invalid_value",
        )
    return nearest
