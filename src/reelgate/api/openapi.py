"""What `/openapi.json` says of each route: its body, its answers, its media types. One pattern for all.

The routers read bodies by hand (`api/body.py`: size limits, OpenAI's error wording), so FastAPI cannot
infer them; each route states its contract with `contract(...)`, built from the wire models in
`api/schemas.py`:

    @router.post("/v1/videos/{video_id}/remix", **contract(VideoObject, BODY_ERRORS, json=VideoRemix))

Errors are always OpenAI's envelope (`ErrorResponse`). Security comes from the auth dependencies
(`auth.API_KEY`, `admin.ADMIN_TOKEN`), so a route that depends on `current_key` is declared as needing a key;
one that calls it itself says so with `contract(..., keyed=True)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from reelgate.api.auth import API_KEY
from reelgate.api.schemas import ErrorResponse

Responses = dict[int | str, dict[str, Any]]

#: Why each error status is answered; a route lists those it can give.
ERRORS = {
    400: "The request is invalid (`invalid_request_error`); `param` names the culprit.",
    401: "No valid API key (or admin token) in `Authorization`.",
    403: "An API key where the admin token is needed.",
    404: "No such object for this key, or no such model.",
    409: "The object is not in a state that allows this (e.g. a video that has not completed).",
    410: "The video's files were deleted by retention.",
    413: "The request body is larger than the server's limit.",
    429: "Rate limit (`rate_limit_exceeded`, with Retry-After) or balance (`insufficient_quota`).",
    503: "The server cannot take requests now (database, disk or model not ready); retry after Retry-After.",
}

#: What a public route that reads the database may answer.
READ_ERRORS = (503,)
#: What a route that takes an API key may answer, whatever else it does.
KEY_ERRORS = (401, 503)
#: What a route that reads a body and submits a task may answer.
BODY_ERRORS = (400, 401, 404, 409, 413, 429, 503)

BINARY = {"type": "string", "format": "binary"}


def errors(*statuses: int) -> Responses:
    """The OpenAI error envelope for each status: `errors(401, 404)`."""
    return {status: {"model": ErrorResponse, "description": ERRORS[status]} for status in statuses}


def media(description: str, *media_types: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response that is not JSON (a file, a page, a stream): `media("The video", "video/mp4")`."""
    content = {media_type: {"schema": schema or BINARY} for media_type in media_types}
    return {"description": description, "content": content}


def event_stream(model: type[BaseModel]) -> dict[str, Any]:
    """One server-sent event of a stream: `data:` holding a `model` as JSON, or the closing `[DONE]`."""
    chunk = {"type": "string", "contentMediaType": "application/json", "contentSchema": inline_schema(model)}
    return {"type": "object", "required": ["data"], "properties": {"data": {"anyOf": [{"const": "[DONE]"}, chunk]}}}


def contract(
    model: type[BaseModel] | None,
    statuses: tuple[int, ...],
    *,
    json: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    ok: dict[str, Any] | None = None,
    also: Responses | None = None,
    keyed: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: its 200 (`model` as JSON, and/or `ok` from `media`),
    its error statuses (OpenAI's envelope), other answers (`also`), its request body, and whether it takes
    an API key without depending on `current_key` (`keyed`)."""
    success: dict[str, Any] = {"model": model} if model is not None else {}
    if ok:
        success = {**success, **ok}
    responses: Responses = {**({200: success} if success else {}), **errors(*statuses), **(also or {})}
    kwargs: dict[str, Any] = {"responses": responses}
    if model is not None:
        kwargs["response_model"] = model
    extra: dict[str, Any] = {"security": [{API_KEY.scheme_name: []}]} if keyed else {}
    if json or form:
        extra["requestBody"] = request_body(json, form)
    if extra:
        kwargs["openapi_extra"] = extra
    return kwargs


def request_body(json: type[BaseModel] | None, form: type[BaseModel] | None) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if json is not None:
        content["application/json"] = {"schema": inline_schema(json)}
    if form is not None:
        content["multipart/form-data"] = {"schema": inline_schema(form)}
    return {"required": True, "content": content}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` written in place (request bodies are small trees)."""
    schema = model.model_json_schema()
    return _resolve(schema, schema.pop("$defs", {}))


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _resolve(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    return node


def install_openapi(app: FastAPI) -> None:
    """Serve the contract as declared: without the 422 FastAPI adds, which reelgate never answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = _without_422(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_422(document: dict[str, Any]) -> dict[str, Any]:
    # Validation errors are 400s in OpenAI's envelope (see `api/errors.py`).
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
