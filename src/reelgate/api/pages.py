"""`/source/{id}` (the task as JSON) and `/web/{id}` (a page that follows the task live).

Both are public, like the provider's: the unguessable task ID is what is shared.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from reelgate.api.browser import csp_nonce
from reelgate.api.deps import links, runtime
from reelgate.api.openapi import READ_ERRORS, contract, media
from reelgate.api.presenters import expired_notice, video_object
from reelgate.api.schemas import VideoObject
from reelgate.errors import NotFound

router = APIRouter()

PAGE = media("The page (HTML); 404 with a page saying so for an unknown ID.", "text/html", schema={"type": "string"})


@router.get("/source/{task_id}", **contract(VideoObject, (404, *READ_ERRORS)))
async def source(task_id: str, request: Request) -> VideoObject:
    task = await runtime(request).tasks.get(task_id)
    return video_object(task, links(request))


@router.get("/web/{task_id}", response_class=HTMLResponse, **contract(None, READ_ERRORS, ok=PAGE, also={404: PAGE}))
async def web(task_id: str, request: Request) -> HTMLResponse:
    try:
        task = await runtime(request).tasks.get(task_id)
    except NotFound:
        page = _page("Not found", "<p class=muted>No task with this ID.</p>", None, csp_nonce(request))
        return HTMLResponse(page, 404)
    snapshot = video_object(task, links(request)).model_dump_json()
    notice = f"<p class=muted id=expired>{html.escape(expired_notice(task))}</p>" if task.files_expired else ""
    return HTMLResponse(_page(task.id, notice, snapshot, csp_nonce(request)))


@cache
def _template() -> str:
    return files("reelgate.api").joinpath("templates/web.html").read_text(encoding="utf-8")


def _page(title: str, body: str, snapshot: str | None, nonce: str) -> str:
    # The snapshot goes into a <script> block: escape `<` so no value can close the tag.
    data = (snapshot or "null").replace("<", "\\u003c")
    return (
        _template()
        .replace("{{title}}", html.escape(title))
        .replace("{{body}}", body)
        .replace("{{snapshot}}", data)
        .replace("{{poll}}", json.dumps(1000))
        .replace("{{nonce}}", nonce)
    )
