"""ASGI middleware: each HTTP request is counted and timed by its route template, in its own log scope."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.observability.logging import log_context
from reelgate.observability.metrics import Metrics

#: The route label of a request no route matched: raw paths would make the label set unbounded.
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request: `/source/{task_id}`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class ObserveRequests:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with log_context():
            try:
                await self.app(scope, receive, send_and_note)
            finally:
                self.metrics.request(scope["method"], route_template(scope), status, time.perf_counter() - started)
