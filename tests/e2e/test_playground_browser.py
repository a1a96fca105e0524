"""The playground in real Chromium (Debian's `chromium`), against a live server, under a strict CSP."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.procedural import ProceduralBackend
from reelgate.billing.keys import new_secret
from reelgate.media.probe import probe
from tests.conftest import live_server, make_settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

#: What the page must work under: nothing inline, nothing from another origin.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
MODELS = {
    "preview-15s": {"backend": "procedural", "seconds": 15, "fps": 8, "portrait": "144x256", "landscape": "256x144"}
}


class HeldAtProgress:
    """The procedural renderer, held at 40% until `gate` opens: the page is seen mid-way, on any machine."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = ProceduralBackend()
        self.gate = asyncio.Event()

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        on_progress(40)
        await self.gate.wait()
        return await self.inner.generate(spec, workdir, on_progress)


def chromium_path() -> str:
    found = os.environ.get("REELGATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Chromium is not installed (Debian: `apt-get install chromium`; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; the browser tests must run in CI")
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    if os.environ.get("CI") == "true":
        from playwright.async_api import async_playwright
    else:
        async_playwright = pytest.importorskip("playwright.async_api").async_playwright
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def open_playground(browser: Any, url: str, **context: Any) -> tuple[Any, list[str]]:
    """A page on the playground served with `STRICT_CSP`; the list collects CSP violations from the console."""
    page = await (await browser.new_context(**context)).new_page()
    page.set_default_timeout(90_000)  # a busy CI machine renders slowly
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else 0)

    async def with_csp(route: Any) -> None:
        response = await route.fetch()
        await route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    await page.route(f"{url}/", with_csp)
    await page.goto(f"{url}/")
    return page, violations


async def use_key(page: Any, key: str) -> None:
    await page.fill("#key", key)
    await page.click("#key-form button[type=submit]")


async def wait_until_playable(page: Any) -> float:
    await page.wait_for_function("() => document.querySelector('#video-status').classList.contains('completed')")
    await page.wait_for_function("() => document.querySelector('#video').readyState === 4")
    return float(await page.eval_on_selector("#video", "video => video.duration"))


async def test_make_watch_remix_and_delete_a_video(browser: Any, tmp_path: Path) -> None:
    held = HeldAtProgress()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / "red.png")
    async with live_server(make_settings(tmp_path, models=MODELS), {"procedural": held}) as server:
        key = await server.create_key("10")
        page, violations = await open_playground(
            browser, server.url, locale="en-US", viewport={"width": 390, "height": 844}
        )
        await use_key(page, key)
        await page.wait_for_selector("#model option[value='preview-15s']", state="attached")
        await page.select_option("#model", "preview-15s")
        await page.fill("#prompt", "A sunset over the sea")
        await page.set_input_files("#image", str(tmp_path / "red.png"))
        await page.click("#create")

        await page.wait_for_function("() => document.querySelector('#video-progress').value === 40")
        assert await page.text_content("#video-status") == "generating 40%"
        held.gate.set()
        assert await wait_until_playable(page) == pytest.approx(15, abs=0.2)
        first = await page.text_content("#video-id")
        async with page.expect_download() as download_info:
            await page.click("#download")
        download = await download_info.value
        assert download.suggested_filename.endswith(".mp4")
        assert probe(await download.path()).duration == pytest.approx(15, abs=0.2)

        await page.fill("#remix-prompt", "make it night")
        await page.click("#remix")
        await page.wait_for_function("first => document.querySelector('#video-id').textContent !== first", arg=first)
        remix = await page.text_content("#video-id")
        assert await wait_until_playable(page) == pytest.approx(15, abs=0.2)
        await page.wait_for_function("() => document.querySelectorAll('#videos li').length === 2")
        listed = await page.eval_on_selector_all("#videos li", "items => items.map(item => item.dataset.id)")
        assert listed == [remix, first]

        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.click("#delete")
        await page.wait_for_function("() => document.querySelectorAll('#videos li').length === 1")
        assert await page.is_hidden("#video-card") and await page.is_hidden("#error")
        async with httpx.AsyncClient() as client:
            gone = await client.get(f"{server.url}/v1/videos/{remix}", headers={"Authorization": key})
        assert gone.status_code == 404
        assert violations == []


async def test_a_wrong_key_shows_the_servers_message(browser: Any, tmp_path: Path) -> None:
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        page, violations = await open_playground(
            browser, server.url, locale="zh-CN", viewport={"width": 1280, "height": 900}
        )
        assert (await page.text_content("h1")).startswith("reelgate · 试用台")
        wrong = new_secret()
        await use_key(page, wrong)
        await page.wait_for_selector("#error", state="visible")
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {wrong}"})
        message = answer.json()["error"]["message"]
        assert await page.text_content("#error") == message
        assert "reelgate keys create" in message
        assert violations == []
