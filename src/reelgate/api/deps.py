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


def base_url(request: Request, rt: Runtime | None = None) -> str:
    """Where clients reach this server: `REELGATE_PUBLIC_URL`, else the request's own base URL (`rt`: the
    request's runtime, when the caller has it at hand)."""
    configured = (rt or runtime(request)).settings.public_url
    if configured:
        return configured
    scope = request.scope
    root = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")
    host = request.headers.get("host")
    return _own_base_url(scope.get("scheme", "http"), host, tuple(server) if server else None, root)


@lru_cache(maxsize=64)
def _own_base_url(scheme: str, host: str | None, server: tuple[str, int] | None, root_path: str) -> str:
    """Starlette's `request.base_url` without its trailing slash, for the few (scheme, Host, server,
    root path) a server sees: working it out took a twentieth of a chat request's time in the app."""
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "path": root_path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", host.encode("latin-1"))] if host is not None else [],
    }
    return str(Request(scope).base_url).rstrip("/")


def links(request: Request, rt: Runtime | None = None) -> Links:
    """Where the client finds a task's pages and files: this server, and a CDN if one serves the files."""
    rt = rt or runtime(request)
    return Links(base_url(request, rt), rt.settings.cdn_base_url)
