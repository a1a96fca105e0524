"""The one place errors become HTTP responses, always in OpenAI's envelope."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from reelgate.errors import InvalidRequest, NotFound, ReelgateError, ServiceUnavailable
from reelgate.store.db import is_unavailable

log = logging.getLogger(__name__)

#: How long a client is asked to wait when the database does not answer.
DATABASE_RETRY_AFTER = 5
#: ...and when every pooled connection stayed busy for `store.db.POOL_WAIT_SECONDS`.
BUSY_RETRY_AFTER = 2

#: The methods a 405's `Allow` may list.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

#: Where FastAPI found a value; left out of the `param` a client sees.
_LOCATIONS = ("body", "query", "path")


def error_response(error: ReelgateError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=error.headers())


def invalid_from_validation(exc: ValidationError | RequestValidationError) -> InvalidRequest:
    """The first problem pydantic found, worded for a client: `messages: Field required`."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. The request body must be valid JSON.",
            code="invalid_json",
        )
    param = ".".join(str(part) for part in first["loc"] if part not in _LOCATIONS) or None
    return InvalidRequest(f"{param}: {first['msg']}" if param else first["msg"], param=param)


def _allow(request: Request) -> dict[str, str]:
    """`Allow` with every method served at this path: the router names only its first match's."""
    routes = request.app.router.routes
    methods = [method for method in _METHODS if any(_serves(route, request, method) for route in routes)]
    return {"Allow": ", ".join(methods)} if methods else {}


def _serves(route: BaseRoute, request: Request, method: str) -> bool:
    return route.matches({**request.scope, "method": method})[0] is Match.FULL


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReelgateError)
    async def _reelgate(_request: Request, exc: ReelgateError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_from_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("Not found."))
        headers = {**(exc.headers or {}), **_allow(request)} if exc.status_code == 405 else exc.headers
        error = ReelgateError(str(exc.detail))
        return JSONResponse(
            {**error.to_dict(), "error": {**error.to_dict()["error"], "type": "invalid_request_error"}},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            return await _unexpected(request, exc)
        if isinstance(exc, PoolTimeout):  # every connection busy: a burst, not a failure
            log.warning("no database connection free for %s %s", request.method, request.url.path)
            return error_response(
                ServiceUnavailable("The server is busy. Try again shortly.", retry_after=BUSY_RETRY_AFTER)
            )
        log.warning("database or disk unavailable on %s %s: %r", request.method, request.url.path, exc)
        return error_response(
            ServiceUnavailable(
                "The service is temporarily unavailable: its database or disk failed. Try again shortly.",
                retry_after=DATABASE_RETRY_AFTER,
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(ReelgateError("The server had an error while processing your request."))
