"""OpenAI's Videos API over reelgate's tasks: create, retrieve, list, delete, remix and download.

The same tasks the chat surface makes: a video started in a chat client is readable here, and a
video made here has `/web/{id}` and `/source/{id}`. A key sees only its own videos; another key's
id answers 404 like an unknown one. Shapes follow the `openai` package's `types/video*.py`.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.datastructures import FormData, UploadFile

from reelgate.admin.schemas import ObjectList, PageParams
from reelgate.api.auth import check_model_access, current_key
from reelgate.api.body import read_form, read_json_object
from reelgate.api.characters import referenced_characters
from reelgate.api.deps import links, runtime
from reelgate.api.middleware import RATE_STATE
from reelgate.api.openapi import BODY_ERRORS, KEY_ERRORS, contract, media
from reelgate.api.possible import check_videos
from reelgate.api.presenters import expired_notice, video_object
from reelgate.api.references import reference_image
from reelgate.api.schemas import (
    DEFAULT_VIDEO_MODEL,
    VideoCreate,
    VideoCreateForm,
    VideoDeleted,
    VideoObject,
    VideoRemix,
)
from reelgate.api.stored import stored_file
from reelgate.backends.base import Orientation
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry, Size
from reelgate.characters.mentions import FORM_FIELD
from reelgate.errors import Conflict, Gone, InvalidRequest
from reelgate.prompt import MAX_PROMPT_CHARS, PromptSpec
from reelgate.store.paging import PageRequest
from reelgate.tasks.dedupe import check_idempotency_key, request_hash
from reelgate.tasks.models import Task, TaskStatus
from reelgate.tasks.service import Admission, Submission


class VideoIdConvertor(StringConvertor):
    """A video id in a path: any segment but the collection's own action names (`/v1/videos/extensions`
    and `/v1/videos/characters` are routes of their own, and `Allow` there must not advertise a video's
    GET/DELETE)."""

    regex = r"(?!(?:extensions|characters|edits)$)[^/]+"


register_url_convertor("video_id", VideoIdConvertor())

router = APIRouter(prefix="/v1/videos", tags=["videos"])

Key = Annotated[ApiKey, Depends(current_key)]

#: How long the SDK's `poll` helper waits between retrievals (`openai-poll-after-ms`) while this process has
#: not yet seen the task's backend finish a video. The helper keeps the first hint it gets: the one
#: answering its retrieval right after the create.
POLL_AFTER_MS = {TaskStatus.QUEUED: 2000, TaskStatus.IN_PROGRESS: 1000}
#: Once it has, polls come twice in the backend's typical turnaround, the second just after it: the typical
#: video is fetched as soon as it is ready, in three polls (each costs the server ~1.5 ms of CPU). Never
#: more often than every `MIN_POLL_AFTER_MS`, nor less often than the defaults.
POLLS_PER_TURNAROUND = 2
TURNAROUND_MARGIN = 1.1
MIN_POLL_AFTER_MS = 250
#: The form fields `videos.create` may send; the SDK sends a reference object as `input_reference[...]`.
CREATE_FIELDS = set(VideoCreate.model_fields) | {
    field.alias or name for name, field in VideoCreateForm.model_fields.items()
}
CONTENT_ERRORS = (400, 404, 409, 410, *KEY_ERRORS)
#: What the content endpoint serves, by `variant`.
CONTENT = media(
    "The video (MP4), its thumbnail (WebP) or its spritesheet (JPEG).", "video/mp4", "image/webp", "image/jpeg"
)


@router.post("", **contract(VideoObject, BODY_ERRORS, json=VideoCreate, form=VideoCreateForm))
async def create_video(request: Request, key: Key) -> JSONResponse:
    rt = runtime(request)
    fields = await _create_fields(request, rt.settings.max_body_bytes, rt.settings.image_max_bytes)
    entry = rt.catalog.get(fields.get("model", DEFAULT_VIDEO_MODEL))
    check_model_access(key, entry.name)
    rt.require_ready(entry)
    prompt = _prompt(fields.get("prompt"))
    seconds = _seconds(entry, fields.get("seconds"))
    width, height = _size(entry, fields.get("size"))
    characters = await referenced_characters(rt, key, entry, prompt, fields.get("characters", fields.get(FORM_FIELD)))
    reference_value = _reference_value(fields)
    check_videos(rt, entry, fields, seconds, (width, height), image=reference_value is not None)
    reference = await reference_image(reference_value, rt.settings, "input_reference") if reference_value else None
    orientation = Orientation.PORTRAIT if height > width else Orientation.LANDSCAPE
    fingerprint = ["videos", prompt, str(seconds), f"{width}x{height}", _digest(reference_value), *characters]
    admission = await rt.tasks.submit(
        Submission(
            key,
            entry,
            PromptSpec(prompt, orientation, explicit_orientation=True),
            request_hash=request_hash(key.id, entry.name, fingerprint),
            idempotency_key=check_idempotency_key(request.headers.get("idempotency-key")),
            seconds=seconds,
            size=(width, height),
            reference=reference,
            characters=characters,
            join_running=False,
        )
    )
    return _admitted(request, admission)


@router.get("", **contract(ObjectList[VideoObject], (400, *KEY_ERRORS)))
async def list_videos(request: Request, key: Key, page: Annotated[PageParams, Query()]) -> ObjectList[VideoObject]:
    found = await runtime(request).tasks.page_for_key(
        key, PageRequest(limit=page.limit, after=page.after, descending=page.order != "asc")
    )
    page_links = links(request)
    data = [video_object(task, page_links) for task in found.items]
    return ObjectList(
        data=data,
        has_more=found.has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/{video_id:video_id}", **contract(VideoObject, (404, *KEY_ERRORS)))
async def retrieve_video(video_id: str, request: Request, key: Key) -> JSONResponse:
    task = await runtime(request).tasks.get_for_key(key, video_id)
    return _video_response(request, task)


@router.delete("/{video_id:video_id}", **contract(VideoDeleted, (404, 409, *KEY_ERRORS)))
async def delete_video(video_id: str, request: Request, key: Key) -> VideoDeleted:
    task = await runtime(request).tasks.delete(key, video_id)
    return VideoDeleted(id=task.id)


@router.post("/{video_id}/remix", **contract(VideoObject, BODY_ERRORS, json=VideoRemix))
async def remix_video(video_id: str, request: Request, key: Key) -> JSONResponse:
    rt = runtime(request)
    body = await read_json_object(request, rt.settings.max_body_bytes)
    prompt = _prompt(body.get("prompt"))
    parent = await rt.tasks.remix_parent(key, video_id)
    entry = rt.catalog.get(parent.model)
    check_model_access(key, entry.name)
    rt.require_ready(entry)
    admission = await rt.tasks.submit(
        Submission(
            key,
            entry,
            PromptSpec(prompt, parent.orientation, explicit_orientation=True),
            request_hash=request_hash(key.id, entry.name, ["remix", parent.id, prompt]),
            idempotency_key=check_idempotency_key(request.headers.get("idempotency-key")),
            seconds=parent.seconds,
            size=(parent.width, parent.height),
            remix_of=parent,
            join_running=False,
        )
    )
    return _admitted(request, admission)


@router.get("/{video_id}/content", response_class=FileResponse, **contract(None, CONTENT_ERRORS, ok=CONTENT))
@router.head("/{video_id}/content", response_class=FileResponse, **contract(None, CONTENT_ERRORS, ok=CONTENT))
async def download_content(
    video_id: str,
    request: Request,
    key: Key,
    variant: Literal["video", "thumbnail", "spritesheet"] = "video",
) -> Response:
    rt = runtime(request)
    task = await rt.tasks.get_for_key(key, video_id)
    if task.files_expired:
        raise Gone(expired_notice(task))
    if task.status is not TaskStatus.COMPLETED or task.video_file is None or task.thumbnail_file is None:
        raise Conflict(
            f"Video '{task.id}' is {task.status.value}; its content is available once it has completed.",
            param="video_id",
        )
    if variant == "spritesheet":
        file_key = await rt.tasks.spritesheet(task)
    else:
        file_key = task.video_file if variant == "video" else task.thumbnail_file
    # Streamed, not redirected: an API client sends its key, and not every client follows a redirect.
    filename = f"{task.id}.{file_key.rsplit('.', 1)[-1]}"
    response = await stored_file(request, rt.storage, file_key, redirect=False, filename=filename)
    if response is None:
        raise Gone(f"The {variant} of video '{task.id}' is no longer stored.")
    return response


def _admitted(request: Request, admission: Admission) -> JSONResponse:
    if admission.rate is not None:
        setattr(request.state, RATE_STATE, admission.rate)
    return _video_response(request, admission.task)


def _video_response(request: Request, task: Task) -> JSONResponse:
    wait = _poll_after_ms(request, task)
    headers = {"openai-poll-after-ms": str(wait)} if wait is not None else {}
    return JSONResponse(video_object(task, links(request)).model_dump(), headers=headers)


def _poll_after_ms(request: Request, task: Task) -> int | None:
    """The `openai-poll-after-ms` for a video not finished yet; None for one that is."""
    default = POLL_AFTER_MS.get(task.status)
    typical = runtime(request).metrics.typical_turnaround(task.backend)
    if default is None or typical is None:
        return default
    wait = typical * TURNAROUND_MARGIN * 1000 / POLLS_PER_TURNAROUND
    return round(min(default, max(MIN_POLL_AFTER_MS, wait)))


async def _create_fields(request: Request, max_body: int, max_image: int) -> dict[str, Any]:
    """The create request's fields, from multipart/form-data (what the SDK sends) or JSON."""
    # A reference image may be inlined as a data URI (a third larger than its bytes) or uploaded.
    limit = max(max_body, max_image * 4 // 3 + 64 * 1024)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await read_form(request, limit)
        try:
            return await _form_fields(form)
        finally:
            await form.close()
    body = await read_json_object(request, limit)
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    return body


async def _form_fields(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name not in CREATE_FIELDS:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
        if name == FORM_FIELD:  # repeated, once per character
            fields.setdefault(name, []).append(value)
            continue
        fields[name] = await value.read() if isinstance(value, UploadFile) else value
    return fields


def _prompt(value: object) -> str:
    if value is None:
        raise InvalidRequest("Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Invalid type for 'prompt': expected a string, but got {_kind(value)} instead.",
            param="prompt",
            code="invalid_type",
        )
    prompt = value.strip()
    if not prompt:
        raise InvalidRequest(
            "The prompt is empty: describe the video to generate.", param="prompt", code="empty_prompt"
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
    return prompt


def _seconds(entry: ModelEntry, value: object) -> int:
    """OpenAI's rule: `seconds` is a string among the model's values ("4", "8", "12")."""
    chosen = _choice(entry, "seconds", value, [str(s) for s in entry.allowed_seconds], "values")
    return entry.seconds if chosen is None else int(chosen)


def _size(entry: ModelEntry, value: object) -> Size:
    chosen = _choice(entry, "size", value, [f"{w}x{h}" for w, h in entry.allowed_sizes], "sizes")
    if chosen is None:
        return entry.size_for(Orientation.PORTRAIT)
    width, height = (int(side) for side in chosen.split("x"))
    return width, height


def _choice(entry: ModelEntry, param: str, value: object, allowed: list[str], noun: str) -> str | None:
    """`value` if it is one of the `allowed` strings, None if left out; 400 in OpenAI's words otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Invalid type for '{param}': expected one of {_listing(allowed)} as a string, "
            f"but got {_kind(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if value not in allowed:
        raise InvalidRequest(
            f"Invalid value: '{value}'. Supported {noun} for {entry.name} are: {_listing(allowed)}.",
            param=param,
            code="invalid_value",
        )
    return value


def _reference_value(fields: dict[str, Any]) -> str | bytes | None:
    """The reference image as uploaded bytes, or a URL / data URI to resolve; None without one."""
    value = fields.get("input_reference", fields.get("input_reference[image_url]"))
    if value is None:
        return None
    if isinstance(value, dict):
        if "file_id" in value:
            raise InvalidRequest(
                "input_reference.file_id is not supported here; upload the image or pass input_reference.image_url.",
                param="input_reference",
            )
        value = value.get("image_url")
    if isinstance(value, bytes) and value:
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InvalidRequest(
        "input_reference must be an image file, or an object with `image_url` (an https URL or a data URI).",
        param="input_reference",
    )


def _digest(value: str | bytes | None) -> str:
    data = value.encode() if isinstance(value, str) else value or b""
    return hashlib.sha256(data).hexdigest()


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else "null"


def _listing(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
