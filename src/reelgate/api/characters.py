"""`/v1/videos/characters`: a character from an uploaded clip (`client.videos.create_character`), read back
by id (`client.videos.get_character`), and the key's own listed. Not charged; counted by the key's
requests-per-minute limit. Another key's character answers 404 like an unknown one. OpenAI's API has no
DELETE for characters, so neither does this one.

Videos refer to characters through `characters` on `POST /v1/videos` or `@Name` in a prompt (see
`referenced_characters`); the backend gets each one's key frame.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile

from reelgate.admin.schemas import ObjectList, PageParams
from reelgate.api.auth import current_key
from reelgate.api.body import read_streamed_form
from reelgate.api.deps import runtime
from reelgate.api.middleware import RATE_STATE
from reelgate.api.openapi import KEY_ERRORS, contract
from reelgate.api.schemas import CharacterCreateForm, CharacterObject
from reelgate.billing.keys import ApiKey
from reelgate.catalog import ModelEntry
from reelgate.characters.mentions import requested_ids
from reelgate.characters.models import KEY_FRAME_SIDE, KEY_FRAMES, Character
from reelgate.characters.service import CharacterService, check_name
from reelgate.errors import InvalidRequest
from reelgate.runtime import Runtime
from reelgate.store.paging import PageRequest

router = APIRouter(prefix="/v1/videos/characters", tags=["characters"])

Key = Annotated[ApiKey, Depends(current_key)]

FIELDS = {"name", "video"}
CREATE_ERRORS = (400, 401, 413, 429, 503)


@router.post("", **contract(CharacterObject, CREATE_ERRORS, form=CharacterCreateForm))
async def create_character(request: Request, key: Key) -> CharacterObject:
    rt = runtime(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "Send the character as multipart/form-data: a `name` field and a `video` file.", code="invalid_content_type"
        )
    limit = max(rt.settings.max_body_bytes, rt.settings.video_upload_max_bytes + 64 * 1024)
    form = await read_streamed_form(request, limit)  # the clip spools to disk, never whole in memory
    try:
        character = await _create(rt, key, _fields(form.multi_items()), request)
    finally:
        await form.close()
    return character_object(character)


@router.get("", **contract(ObjectList[CharacterObject], (400, *KEY_ERRORS)))
async def list_characters(
    request: Request, key: Key, page: Annotated[PageParams, Query()]
) -> ObjectList[CharacterObject]:
    found = await service(runtime(request)).page_for_key(
        key, PageRequest(limit=page.limit, after=page.after, descending=page.order != "asc")
    )
    data = [character_object(character) for character in found.items]
    return ObjectList(
        data=data,
        has_more=found.has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/{character_id}", **contract(CharacterObject, (404, *KEY_ERRORS)))
async def get_character(character_id: str, request: Request, key: Key) -> CharacterObject:
    return character_object(await service(runtime(request)).get_for_key(key, character_id))


def service(rt: Runtime) -> CharacterService:
    return CharacterService(rt.engine, rt.storage, rt.tasks.policy.limits)


def character_object(character: Character) -> CharacterObject:
    return CharacterObject(id=character.id, created_at=int(character.created_at.timestamp()), name=character.name)


async def referenced_characters(
    rt: Runtime, key: ApiKey, entry: ModelEntry, prompt: str, value: Any = None, param: str = "characters"
) -> tuple[str, ...]:
    """The ids of the characters a video request refers to (its `characters` and the prompt's `@Name`s);
    400 for another key's or an unknown id, or when the model's backend cannot show characters."""
    found = await service(rt).referenced(key, requested_ids(value, param), prompt, param)
    if found and not getattr(rt.backends.get(entry.backend), "takes_characters", False):
        raise InvalidRequest(f"The model `{entry.name}` cannot show characters.", param=param)
    return tuple(character.id for character in found)


async def _create(rt: Runtime, key: ApiKey, fields: dict[str, Any], request: Request) -> Character:
    from reelgate.inputs.videos import read_key_frames, read_upload  # PyAV loads only where a clip is read

    name = check_name(fields.get("name"))
    upload = fields.get("video")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest(
            "Missing required parameter: 'video' (an MP4 or MOV file).",
            param="video",
            code="missing_required_parameter",
        )
    video = await read_upload(upload, rt.settings, "video")
    try:
        frames = await read_key_frames(video.path, KEY_FRAMES, KEY_FRAME_SIDE, rt.settings.video_upload_probe_timeout)
    finally:
        await asyncio.to_thread(video.discard)
    character, rate = await service(rt).create(key, name, frames, (video.width, video.height))
    setattr(request.state, RATE_STATE, rate)
    return character


def _fields(items: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in items:
        if name not in FIELDS:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
        fields[name] = value
    return fields
