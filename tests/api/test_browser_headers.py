"""What a browser is told: pages under a nonce CSP that their own inline script and style satisfy, no
framing or referrer, `nosniff` on files, and CORS on `/v1/` for browser chat clients.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from reelgate.billing.keys import create_key
from reelgate.money import parse_credits
from tests.conftest import make_settings

UNKNOWN_PAGE = "/web/task_01jzzzzzzzzzzzzzzzzzzzzzzz"


def _nonce(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    found = re.search(r"script-src 'self' 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert found, policy
    return found.group(1)


async def test_a_page_carries_the_page_policy_and_its_inline_code_the_nonce(app_client: httpx.AsyncClient) -> None:
    first, second = await app_client.get(UNKNOWN_PAGE), await app_client.get(UNKNOWN_PAGE)
    assert first.status_code == 404 and first.headers["content-type"].startswith("text/html")
    nonce = _nonce(first)
    assert nonce != _nonce(second)  # fresh for every response
    policy = first.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert f"style-src 'self' 'nonce-{nonce}'" in policy
    # Every inline script and style of the page carries this response's nonce; nothing else is inline.
    tags = re.findall(r"<(script|style)\b([^>]*)>", first.text)
    assert {tag for tag, _ in tags} == {"script", "style"}
    assert all(f'nonce="{nonce}"' in attributes for _, attributes in tags)
    assert not re.search(r"\son[a-z]+=|\sstyle=", first.text)
    assert first.headers["x-frame-options"] == "DENY"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["x-content-type-options"] == "nosniff"


async def test_the_playground_gets_the_same_policy(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_stored_files_are_never_sniffed(app_client: httpx.AsyncClient, tmp_path: Path) -> None:
    source = tmp_path / "thumb.webp"
    source.write_bytes(b"<html><script>alert(1)</script>")  # what a sniffing browser would run
    key = await app_client.app.state.runtime.storage.put(source, "webp")  # type: ignore[attr-defined]
    response = await app_client.get(f"/cdn/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


async def test_v1_answers_a_cors_preflight_from_any_origin(app_client: httpx.AsyncClient) -> None:
    response = await app_client.options(
        "/v1/chat/completions",
        headers={
            "Origin": "https://chat.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert all(name in allowed for name in ("authorization", "content-type", "idempotency-key"))


async def test_v1_responses_expose_the_rate_limit_headers(tmp_path: Path) -> None:
    from reelgate.app import create_app

    app = create_app(make_settings(tmp_path, rpm_limit=5))
    async with app.router.lifespan_context(app):
        async with app.state.runtime.engine.begin() as conn:
            _, secret = await create_key(conn, balance=parse_credits("10"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {"Authorization": f"Bearer {secret}", "Origin": "https://chat.example"}
            response = await client.post("/v1/videos", json={"prompt": "一只猫"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-ratelimit-remaining-requests", "retry-after", "openai-poll-after-ms"} <= exposed
    assert response.headers["x-ratelimit-remaining-requests"] == "4"
    assert "openai-poll-after-ms" in response.headers


@pytest.mark.parametrize(("origin", "allowed"), [("https://chat.example", True), ("https://evil.example", False)])
async def test_the_allowed_origins_are_a_setting(tmp_path: Path, origin: str, allowed: bool) -> None:
    from reelgate.app import create_app

    app = create_app(make_settings(tmp_path, cors_allow_origins=["https://chat.example"]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/v1/models", headers={"Origin": origin})
            pages = await client.get(UNKNOWN_PAGE, headers={"Origin": origin})
    assert response.headers.get("access-control-allow-origin") == (origin if allowed else None)
    assert "access-control-allow-origin" not in pages.headers  # CORS is for the API only
