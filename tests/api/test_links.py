"""A task's links point where the client reached the server: its scheme, Host and root path, per request."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from reelgate.api.deps import links


def _request(public_url: str = "", host: bytes | None = None, **scope: Any) -> Request:
    settings = SimpleNamespace(public_url=public_url, cdn_base_url="")
    app = SimpleNamespace(state=SimpleNamespace(runtime=SimpleNamespace(settings=settings)))
    headers = [(b"host", host)] if host is not None else []
    base = {"type": "http", "scheme": "http", "server": ("10.0.0.5", 8000), "root_path": "", "path": "/v1/x"}
    return Request({**base, "headers": headers, "app": app, **scope})


def test_each_request_gets_the_links_of_the_name_it_used() -> None:
    assert links(_request(host=b"a.example")).page("task_1") == "http://a.example/web/task_1"
    assert links(_request(host=b"b.example:8443", scheme="https")).page("task_1") == "https://b.example:8443/web/task_1"
    assert links(_request(host=b"a.example")).file("v.mp4") == "http://a.example/cdn/v.mp4"


def test_without_a_host_header_the_servers_address_and_root_path_are_used() -> None:
    assert links(_request(root_path="/gw")).source("task_1") == "http://10.0.0.5:8000/gw/source/task_1"
    assert links(_request(server=("::1", 443), scheme="https")).base_url == "https://[::1]"


def test_a_configured_public_url_wins_over_the_request() -> None:
    request = _request(public_url="https://video.example.com", host=b"internal:8000")
    assert links(request).page("task_1") == "https://video.example.com/web/task_1"
