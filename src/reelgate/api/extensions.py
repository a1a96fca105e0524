"""`POST /v1/videos/extensions` (`client.videos.extend`): a completed video continued by the prompt.

The new task's first seconds are the source video's, and `seconds` more follow it; it is priced by those
new seconds only. The source is `{"id": ...}` of a completed video of the same key (JSON, or the
`video[id]` form field the `openai` package sends); an uploaded file is refused for now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from reelgate.api.auth import check_model_access, current_key
from reelgate.api.body import read_form, read_json_object
from reelgate.api.deps import runtime
from reelgate.api.openapi import BODY_ERRORS, contract
from reelgate.api.schemas import EXTENSION_SECONDS, VideoExtend, VideoExtendForm, VideoObject
from reelgate.api.videos import _admitted, _prompt
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry
from reelgate.errors import InvalidRequest
from reelgate.prompt import PromptSpec
from reelgate.runtime import Runtime
from reelgate.tasks.dedupe import check_idempotency_key, request_hash
from reelgate.tasks.service import Submission

router = APIRouter(prefix="/v1/videos", tags=["videos"])

Key = Annotated[ApiKey, Depends(current_key)]

FIELDS = {"prompt", "seconds", "video", "video[id]"}


@router.post("/extensions", **contract(VideoObject, BODY_ERRORS, json=VideoExtend, form=VideoExtendForm))
async def extend_video(request: Request, key: Key) -> JSONResponse:
    rt = runtime(request)
    fields = await _fields(request, rt.settings.max_body_bytes)
    prompt = _prompt(fields.get("prompt"))
    seconds = extension_seconds(fields.get("seconds"))
    source = await rt.tasks.remix_parent(key, _source_id(fields), param="video", verb="extend")
    entry = rt.catalog.get(source.model)
    check_model_access(key, entry.name)
    check_extendable(rt, entry, "video")
    rt.require_ready(entry)
    admission = await rt.tasks.submit(
        Submission(
            key,
            entry,
            PromptSpec(prompt, source.orientation, explicit_orientation=True),
            request_hash=request_hash(key.id, entry.name, ["extend", source.id, str(seconds), prompt]),
            idempotency_key=check_idempotency_key(request.headers.get("idempotency-key")),
            seconds=seconds,
            size=(source.width, source.height),
            extend_of=source,
            join_running=False,
        )
    )
    return _admitted(request, admission)


def check_extendable(rt: Runtime, entry: ModelEntry, param: str) -> None:
    """400 naming the model when its backend cannot continue a video (only the procedural one can)."""
    if not getattr(rt.backends.get(entry.backend), "can_extend", False):
        raise InvalidRequest(f"The model `{entry.name}` cannot extend videos.", param=param)


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


async def _fields(request: Request, max_body: int) -> dict[str, Any]:
    """The request's fields, from multipart/form-data (what the SDK sends) or JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await read_form(request, max_body)
        try:
            items = list(form.multi_items())
            if any(isinstance(value, UploadFile) for _, value in items):
                raise InvalidRequest(
                    "Extending an uploaded file is not supported here; pass video[id] of a completed video.",
                    param="video",
                )
            fields: dict[str, Any] = dict(items)
        finally:
            await form.close()
    else:
        fields = await read_json_object(request, max_body)
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    return fields


def _source_id(fields: dict[str, Any]) -> str:
    value = fields.get("video[id]")
    video = fields.get("video")
    if value is None and isinstance(video, dict):
        value = video.get("id")
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            'Missing or invalid \'video\': pass {"id": "<a completed video>"}.',
            param="video",
            code="missing_required_parameter" if video is None and value is None else "invalid_value",
        )
    return value.strip()
