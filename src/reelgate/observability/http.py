"""What each HTTP request leaves when it ends (`api/middleware.py` calls `observed`): a count and a time by
its route template, and an access line written in the request's own log scope.

The access line is written as the response ends, not as it starts (uvicorn's own access log, turned off in
`reelgate serve`, writes it before the response's first byte): a stream's first chunk does not wait for a
log line, and the line can say how long the request took and carry the key and task it concerned:

    127.0.0.1:52014 - "POST /v1/chat/completions HTTP/1.1" 200 183.402s key_id=key_01k... task_id=task_01k...

A request still open when the process is killed leaves no line.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from reelgate.observability.metrics import Metrics

#: The logger of the access lines (one per request, at its end).
access_log = logging.getLogger("reelgate.access")

#: The route label of a request no route matched: raw paths would make the label set unbounded.
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request: `/source/{task_id}`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def observed(metrics: Metrics, scope: Scope, status: int, took: float) -> None:
    """A request that ended: counted and timed by its route, and its access line written."""
    metrics.request(scope["method"], route_template(scope), status, took)
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
