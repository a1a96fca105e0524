"""`/cdn/{YYYYMMDD}/{32 hex}.{mp4|webp}`: stored files, immutable, with Range and ETag support.

A file that retention deleted answers 410 Gone, saying when its video expired.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from reelgate.api.deps import runtime
from reelgate.api.openapi import READ_ERRORS, Responses, contract, media
from reelgate.api.presenters import expired_notice
from reelgate.api.stored import stored_file
from reelgate.errors import Gone, NotFound, ReelgateError
from reelgate.storage.base import is_valid_key
from reelgate.tasks.service import TaskService

router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"
#: Only videos and their thumbnails are public; reference images and spritesheets are served to their key.
PUBLIC = ("mp4", "webp")
FILE = media("The file: a video or its thumbnail.", "video/mp4", "image/webp")
#: With media in a bucket (`REELGATE_STORAGE_URL`) and the default `REELGATE_CDN_MODE=redirect`.
REDIRECT: Responses = {302: {"description": "The file is in a storage bucket: its presigned URL in `Location`."}}
SERVE = contract(None, (404, 410, *READ_ERRORS), ok=FILE, also=REDIRECT)


@router.get("/cdn/{day}/{name}", response_class=FileResponse, **SERVE)
@router.head("/cdn/{day}/{name}", response_class=FileResponse, **SERVE)
async def serve_file(day: str, name: str, request: Request) -> Response:
    """The file itself, or (from a bucket) a 302 to a presigned URL unless `REELGATE_CDN_MODE=proxy`."""
    key = f"{day}/{name}"
    rt = runtime(request)
    response = None
    if is_valid_key(key) and name.rsplit(".", 1)[-1] in PUBLIC:
        redirect = rt.settings.cdn_mode == "redirect"
        response = await stored_file(request, rt.storage, key, redirect=redirect, headers={"Cache-Control": IMMUTABLE})
    if response is None:
        raise await _missing(rt.tasks, key)
    return response


async def _missing(tasks: TaskService, key: str) -> ReelgateError:
    """410 for the file of a task whose files expired, 404 for anything else."""
    task = await tasks.find_by_file(key) if is_valid_key(key) else None
    if task is None or not task.files_expired:
        return NotFound("No file here.")
    return Gone(expired_notice(task))
