"""Access to the running app's parts from a request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from reelgate.render.chat_markdown import Links

if TYPE_CHECKING:
    from reelgate.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def base_url(request: Request) -> str:
    """Where clients reach this server: `REELGATE_PUBLIC_URL`, else the request's own base URL."""
    configured = runtime(request).settings.public_url
    return configured or str(request.base_url).rstrip("/")


def links(request: Request) -> Links:
    """Where the client finds a task's pages and files: this server, and a CDN if one serves the files."""
    return Links(base_url(request), runtime(request).settings.cdn_base_url)
