"""What browsers are told: one header policy for reelgate's pages, `nosniff` everywhere, CORS on `/v1/`.

    every response      X-Content-Type-Options: nosniff (MP4/WebP under /cdn are never sniffed as HTML)
    pages (/, /web/...)  Content-Security-Policy with a per-response nonce, X-Frame-Options: DENY,
                        Referrer-Policy: no-referrer (a /web link is the share secret)
    /v1/...             CORS: preflights answered, Access-Control-Allow-Origin from
                        `Settings.cors_allow_origins` (`*` by default, as OpenAI's API does), the
                        rate-limit and polling headers exposed to the page's script

A page puts `csp_nonce(request)` on its inline `<script>` and `<style>`; external files come from
'self'. Media may come from another origin (a bucket's presigned URL, a public_url), so img/media allow any.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths of the pages reelgate serves itself (`/` is the playground); `/docs` keeps FastAPI's own.
PAGE_PATHS = ("/web/",)
PAGE_EXACT = ("/",)
#: The headers a browser client's script may read: OpenAI's rate-limit headers and the SDK's poll hint.
EXPOSED_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "retry-after",
    "openai-poll-after-ms",
)
_NONCE = "reelgate_csp_nonce"


def csp_nonce(request: Request) -> str:
    """The nonce of this response's Content-Security-Policy (set by `BrowserHeaders`)."""
    return str(request.scope.get("state", {}).get(_NONCE, ""))


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src * data: blob:",
            "media-src * data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def is_page(path: str) -> bool:
    return path in PAGE_EXACT or path.startswith(PAGE_PATHS)


class BrowserHeaders:
    """`nosniff` on every response; the page policy (CSP with a fresh nonce, frames, referrer) on pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = is_page(scope["path"])
        nonce = secrets.token_urlsafe(16) if page else ""
        if page:
            scope.setdefault("state", {})[_NONCE] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if page:
                    headers["Content-Security-Policy"] = content_security_policy(nonce)
                    headers["X-Frame-Options"] = "DENY"
                    headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ApiCors:
    """Starlette's CORS middleware, for `/v1/` only: browser chat clients call the API from their own origin."""

    def __init__(self, app: ASGIApp, allow_origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
