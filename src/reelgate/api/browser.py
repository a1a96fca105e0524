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
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Scope

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
    """The nonce of this response's Content-Security-Policy (set by `response_headers`)."""
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


def response_headers(state: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """A page's own headers: its policy, with a fresh nonce kept in the request's `state` for `csp_nonce`."""
    nonce = secrets.token_urlsafe(16)
    state[_NONCE] = nonce
    return (
        ("Content-Security-Policy", content_security_policy(nonce)),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    )


def api_cors(app: ASGIApp, allow_origins: list[str]) -> CORSMiddleware:
    """Starlette's CORS middleware as `/v1/` uses it: browser chat clients call the API from their own origin."""
    return CORSMiddleware(
        app,
        allow_origins=allow_origins,
        allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=list(EXPOSED_HEADERS),
        max_age=600,
    )


def wants_cors(scope: Scope) -> bool:
    """A browser's call to `/v1/`: one that says its `Origin` (the CORS middleware does nothing for others)."""
    if scope["path"].startswith("/v1/"):
        for name, _ in scope["headers"]:
            if name == b"origin":
                return True
    return False
