"""Access to the running app's parts from a request."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from fastapi import Request

from reelgate.render.chat_markdown import Links

if TYPE_CHECKING:
    from reelgate.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def base_url(request: Request) -> str:
    """Where clients reach this server: `REELGATE_PUBLIC_URL`, else the request's own base URL (its scheme,
    Host header, else the server's address, and root path)."""
    configured = runtime(request).settings.public_url
    if configured:
        return configured
    scope = request.scope
    server = tuple(scope["server"]) if scope.get("server") else None
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    return _own_base_url(scope["scheme"], request.headers.get("host"), server, root_path)


@lru_cache(maxsize=64)
def _own_base_url(scheme: str, host: str | None, server: tuple[str, int] | None, root_path: str) -> str:
    """Starlette's `request.base_url` made from only what it depends on, once per distinct set: a server is
    reached under few names, and building the URL anew cost several microseconds of every chat request."""
    headers = [(b"host", host.encode("latin-1"))] if host is not None else []
    scope = {"type": "http", "scheme": scheme, "server": server, "root_path": root_path, "path": "", "headers": headers}
    return str(Request(scope).base_url).rstrip("/")


def links(request: Request) -> Links:
    """Where the client finds a task's pages and files: this server, and a CDN if one serves the files."""
    return _links(base_url(request), runtime(request).settings.cdn_base_url)


@lru_cache(maxsize=64)
def _links(base: str, cdn: str) -> Links:
    return Links(base, cdn)
