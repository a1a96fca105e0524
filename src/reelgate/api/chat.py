"""`POST /v1/chat/completions`: a chat request becomes a video task, streamed as the provider does."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from ulid import ULID

from reelgate.api.auth import check_model_access, current_key
from reelgate.api.body import read_json_object
from reelgate.api.characters import referenced_characters
from reelgate.api.deps import links, runtime
from reelgate.api.errors import invalid_from_validation
from reelgate.api.extensions import check_continuable, check_extendable, check_source, extension_seconds
from reelgate.api.middleware import RATE_STATE
from reelgate.api.openapi import BODY_ERRORS, contract, event_stream, media
from reelgate.api.possible import check_chat
from reelgate.api.references import reference_image
from reelgate.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, Message
from reelgate.api.sse import CompletionMeta, EventStream, chat_chunks, usage_for, with_last_words
from reelgate.billing.keys import ApiKey
from reelgate.clients.answers import answer
from reelgate.clients.background import Template, instruction_text, recognise
from reelgate.clients.record import record_background
from reelgate.errors import InvalidRequest
from reelgate.observability.logging import bind
from reelgate.prompt import continued_task_id, extension_ask, last_user_images, parse_messages
from reelgate.render.chat_markdown import EN, ZH, ChatMarkdown, Wording
from reelgate.tasks.dedupe import check_idempotency_key, request_hash
from reelgate.tasks.models import Task
from reelgate.tasks.service import Submission, TaskService

if TYPE_CHECKING:
    from reelgate.runtime import Runtime


class PlainRoute(APIRoute):
    """A route FastAPI documents from its decorator but calls as Starlette does: `endpoint(request)`, whose
    response is sent as it is.

    The chat route takes the crowds, declares no parameter but the request and returns its responses
    itself: FastAPI's request handler (solving dependencies, validating, serializing) has nothing to do
    for it, and cost ~40 us of CPU a request doing it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        declared = (
            dependant.dependencies,
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
        )
        if any(declared) or self.dependencies:
            raise TypeError(f"{self.path} declares what only FastAPI's handler provides; use APIRoute")
        return self.endpoint


router = APIRouter(route_class=PlainRoute)

#: With `"stream": true`: `data: {chat.completion.chunk}` lines, then `data: [DONE]`.
STREAM = media(
    "The completion (JSON), or with `stream` its chunks as server-sent events.",
    "text/event-stream",
    schema=event_stream(ChatCompletionChunk),
)


@router.post(
    "/v1/chat/completions", **contract(ChatCompletion, BODY_ERRORS, json=ChatCompletionRequest, ok=STREAM, keyed=True)
)
async def create_chat_completion(request: Request) -> EventStream | JSONResponse:
    key = await current_key(request)
    rt = runtime(request)
    params = _parse(await read_json_object(request, rt.settings.max_body_bytes))
    entry = rt.catalog.get(params.model)
    check_model_access(key, entry.name)
    template = recognise(params.messages)
    if template is not None:
        return await _background(request, key, entry.name, params, template)
    rt.require_ready(entry)
    spec = parse_messages(params.messages)
    parent = await _continued(rt.tasks, key, params.messages)
    if parent is not None and not spec.explicit_orientation:
        spec = replace(spec, orientation=parent.orientation)
    ask = extension_ask(spec.prompt) if parent is not None else None
    extend_of: Task | None = None
    seconds: int | None = None
    if parent is not None and ask is not None:  # "延长 8 秒": the video goes on instead of changing
        check_extendable(rt, entry, "messages")
        check_source(rt, entry, parent.backend_state, "messages")
        extend_of, seconds = parent, extension_seconds(ask[0], "messages")
        check_continuable(parent, seconds, "messages")
        spec = replace(spec, prompt=ask[1] or parent.prompt, orientation=parent.orientation)
        parent = None
    characters = await referenced_characters(rt, key, entry, spec.prompt, param="messages")  # "@Name" in the prompt
    images = last_user_images(params.messages)
    check_chat(rt, entry, spec, image=bool(images))
    reference = await reference_image(images[0], rt.settings, "messages") if images else None
    admission = await rt.tasks.submit(
        Submission(
            key,
            entry,
            spec,
            request_hash=request_hash(key.id, entry.name, params.messages),
            idempotency_key=check_idempotency_key(request.headers.get("idempotency-key")),
            remix_of=parent,
            reference=reference,
            characters=characters,
            extend_of=extend_of,
            seconds=seconds,
            size=(extend_of.width, extend_of.height) if extend_of else None,
        )
    )
    if admission.rate is not None:
        setattr(request.state, RATE_STATE, admission.rate)
    task = admission.task
    bind(task_id=task.id)
    markdown = ChatMarkdown(links(request, rt), _wording(rt, request), player=_player(rt, key))
    meta = CompletionMeta(f"chatcmpl-{task.id.removeprefix('task_')}", int(time.time()), entry.name)
    if params.stream:
        pieces = markdown_pieces(rt.tasks, task, markdown, rt.settings.keepalive_seconds)
        opening = markdown.header(task)
        body = chat_chunks(meta, opening, pieces, prompt=spec.prompt, include_usage=params.include_usage)
        return EventStream(body, counted_in=rt.metrics.active_streams)
    pieces = markdown_pieces(rt.tasks, task, markdown, None)
    content = "".join([*markdown.header(task), *[piece async for piece in pieces]])
    return JSONResponse(_completion(meta, content, spec.prompt).model_dump())


async def _background(
    request: Request, key: ApiKey, model: str, params: ChatCompletionRequest, template: Template
) -> EventStream | JSONResponse:
    """A client's title, tags, follow-ups...: answered at once in its own form, no task, no charge."""
    rt = runtime(request)
    if not rt.settings.background_answers:
        raise InvalidRequest(
            f"`{model}` makes videos; it does not answer {template.client}'s background `{template.name}` "
            "requests. Point the client's task (title, tags, ...) model at a text model.",
            param="messages",
            code="background_request_refused",
        )
    content = answer(template, params.messages)
    await record_background(rt.engine, key.id, model, template)
    rt.metrics.background.labels(template.client, template.name).inc()
    meta = CompletionMeta(f"chatcmpl-{str(ULID()).lower()}", int(time.time()), model)
    prompt = instruction_text(params.messages)
    if params.stream:
        return EventStream(chat_chunks(meta, [content], prompt=prompt, include_usage=params.include_usage))
    return JSONResponse(_completion(meta, content, prompt).model_dump())


def _player(rt: Runtime, key: ApiKey) -> bool:
    """The key's own choice of the player block, else the server's."""
    return key.player_block if key.player_block is not None else rt.settings.player_block


async def _continued(tasks: TaskService, key: ApiKey, messages: list[Any]) -> Task | None:
    """The video an ongoing conversation changes (its earlier reply's task), checked for remixing."""
    task_id = continued_task_id(messages)
    return await tasks.remix_parent(key, task_id, param="messages") if task_id else None


def _parse(body: dict[str, object]) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def _wording(rt: Runtime, request: Request) -> Wording:
    """English when the server says so or the client's Accept-Language puts English first."""
    if rt.settings.locale == "en":
        return EN
    return EN if preferred_language(request.headers.get("accept-language", "")) == "en" else ZH


def preferred_language(header: str) -> str:
    """The primary tag of the highest-weighted language: `"en-US,zh;q=0.8"` -> `"en"`."""
    best, best_q = "", 0.0
    for item in header.split(","):
        tag, _, params = item.strip().partition(";")
        q = _weight(params)
        if tag and q > best_q:
            best, best_q = tag.split("-")[0].lower(), q
    return best


def _weight(params: str) -> float:
    name, _, value = params.strip().partition("=")
    try:
        return float(value) if name.strip() == "q" else 1.0
    except ValueError:
        return 0.0


def markdown_pieces(
    tasks: TaskService, task: Task, markdown: ChatMarkdown, keepalive: float | None
) -> AsyncGenerator[str, None]:
    """After the header (`markdown.header`), pieces as the task moves, with keep-alive dots in silences (if
    `keepalive`).

    If the task cannot be followed any further (the database went away), the last piece says that it is
    still running and links its raw data; the task itself goes on.
    """
    return with_last_words(_following(tasks, task, markdown, keepalive), lambda: markdown.interrupted(task.id))


async def _following(
    tasks: TaskService, task: Task, markdown: ChatMarkdown, keepalive: float | None
) -> AsyncGenerator[str, None]:
    """Pieces as the task's snapshots arrive; a keep-alive dot whenever half `keepalive` passed without
    one. The dots run on this stream's own clock: however slow the database, they leave on time."""
    half = keepalive / 2 if keepalive else 2.0
    last_sent = time.monotonic()
    async with tasks.follow(task) as snapshots:
        while not markdown.ended:
            snapshot = await snapshots.next(last_sent + half - time.monotonic() if keepalive else half)
            pieces = markdown.advance(snapshot) if snapshot else []
            if not pieces and keepalive and time.monotonic() - last_sent >= half:
                pieces = [markdown.keepalive()]
            for piece in pieces:
                yield piece
                last_sent = time.monotonic()


def _completion(meta: CompletionMeta, content: str, prompt: str) -> ChatCompletion:
    return ChatCompletion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        choices=[Choice(message=Message(content=content))],
        usage=usage_for(prompt, content),
    )
