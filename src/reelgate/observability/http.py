"""ASGI middleware: each HTTP request is counted and timed by its route template, in its own log scope,
and logged when it ends.

The access line is written as the response ends, not as it starts (uvicorn's own access log, turned off in
`reelgate serve`, writes it before the response's first byte): a stream's first chunk does not wait for a
log line, and the line can say how long the request took and carry the key and task it concerned:

    127.0.0.1:52014 - "POST /v1/chat/completions HTTP/1.1" 200 183.402s key_id=key_01k... task_id=task_01k...

A request still open when the process is killed leaves no line.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelgate.observability.logging import log_context
from reelgate.observability.metrics import Metrics

#: The logger of the access lines (one per request, at its end).
access_log = logging.getLogger("reelgate.access")

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
                took = time.perf_counter() - started
                self.metrics.request(scope["method"], route_template(scope), status, took)
                if access_log.isEnabledFor(logging.INFO):
                    access_log.info(
                        '%s - "%s %s HTTP/%s" %d %.3fs',
                        client(scope),
                        scope["method"],
                        path_with_query(scope),
                        scope.get("http_version", "1.1"),
                        status,
                        took,
                    )


def client(scope: Scope) -> str:
    """`host:port` of the peer, as the server saw it (after uvicorn's proxy-header handling)."""
    peer = scope.get("client")
    return f"{peer[0]}:{peer[1]}" if peer else "-"


def path_with_query(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    return scope.get("root_path", "") + scope["path"] + ("?" + query.decode("latin-1") if query else "")
