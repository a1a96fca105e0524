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


def test_the_base_url_is_starlettes_own_for_every_scheme_host_server_and_root_path() -> None:
    """`base_url` keeps a few answers to save working them out per request; each is what Starlette says."""
    hosts = [b"a.example", b"a.example:8443", b"[::1]:8080", b"not a host!", b"h\xe9te.example", None]
    servers = [("10.0.0.5", 8000), ("::1", 443), ("10.0.0.5", 80), None]
    for scheme in ("http", "https"):
        for host in hosts:
            for server in servers:
                for root_path in ("", "/gw", "/gw/"):
                    request = _request(host=host, scheme=scheme, server=server, root_path=root_path)
                    for _ in range(2):  # worked out, then kept
                        assert links(request).base_url == str(request.base_url).rstrip("/")
