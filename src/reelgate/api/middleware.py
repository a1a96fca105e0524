"""`Edge`: the one ASGI middleware around every route, doing in one layer what reelgate adds to HTTP.

    coming in   the URL made storable (`guards.nul_free`), a log scope for the request, CORS for a
                browser's call to `/v1/` (`browser.py`)
    going out   `nosniff` and, on pages, their policy (`browser.response_headers`); OpenAI's
                `x-ratelimit-*` headers of the `RateState` a route left in `request.state`, streamed
                responses too
    at the end  the request counted, timed and logged (`observability/http.py`)

One layer with one send wrapper, because every message of every response passes it: as five middlewares
these cost a chat stream five coroutines, three wrappers per message and ~80 us of CPU in a burst.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.api.browser import api_cors, is_page, response_headers, wants_cors
from reelgate.api.guards import nul_free
from reelgate.billing.limits import RateState
from reelgate.observability.http import observed
from reelgate.observability.logging import log_context
from reelgate.observability.metrics import Metrics

RATE_STATE = "reelgate_rate"


class Edge:
    def __init__(self, app: ASGIApp, metrics: Metrics, allow_origins: list[str]) -> None:
        self.app = app
        self.cors: CORSMiddleware = api_cors(app, allow_origins)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul_free(scope)
        state = scope.setdefault("state", {})
        page_headers = response_headers(state) if is_page(scope["path"]) else ()
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before it answers

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                for name, value in page_headers:
                    headers[name] = value
                rate = state.get(RATE_STATE)
                if isinstance(rate, RateState):
                    for name, value in rate.headers().items():
                        headers[name] = value
            await send(message)

        app = self.cors if wants_cors(scope) else self.app
        with log_context():
            try:
                await app(scope, receive, send_with_headers)
            finally:
                observed(self.metrics, scope, status, time.perf_counter() - started)
