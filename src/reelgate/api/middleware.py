"""ASGI middleware: OpenAI's `x-ratelimit-*` headers on every response to an authenticated request."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.billing.limits import RateState

RATE_STATE = "reelgate_rate"


class RateLimitHeaders:
    """Adds the headers of the `RateState` a route left in `request.state`, streamed responses too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            state = scope.get("state", {}).get(RATE_STATE)
            if message["type"] == "http.response.start" and isinstance(state, RateState):
                headers = MutableHeaders(scope=message)
                for name, value in state.headers().items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
