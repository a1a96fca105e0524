"""The `/web/{id}` page in real Chromium under the CSP reelgate sends: its inline script and style run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.backends.fake import FailingBackend, GatedBackend
from tests.conftest import live_server, make_settings
from tests.e2e.test_playground_browser import browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def test_the_preview_page_works_under_its_own_csp(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    held = {"procedural": GatedBackend(FailingBackend(), name="procedural")}  # stays queued: nothing renders
    async with live_server(make_settings(tmp_path), held) as server:
        secret = await server.create_key()
        async with httpx.AsyncClient(base_url=server.url) as client:
            created = await client.post(
                "/v1/videos", json={"prompt": "一只猫 <b>bold</b>"}, headers={"Authorization": f"Bearer {secret}"}
            )
        assert created.status_code == 200, created.text
        page = await (await browser.new_context()).new_page()
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else 0)
        response = await page.goto(f"{server.url}/web/{created.json()['id']}")
        assert "nonce-" in response.headers["content-security-policy"]
        await page.wait_for_function("() => !document.querySelector('#task').hidden")  # the inline script ran
        assert await page.text_content("#prompt") == "一只猫 <b>bold</b>"
        bar_height = await page.eval_on_selector(".bar", "bar => getComputedStyle(bar).height")
        assert bar_height == "10px"  # the inline style applied
        assert violations == []
