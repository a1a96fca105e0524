"""The playground in real Chromium (Debian's `chromium`), against a real `reelgate serve`, under a strict CSP."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelgate.billing.keys import new_secret
from tests.conftest import SMALL_MODELS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

#: What the page must work under: nothing inline, nothing from another origin.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Long enough (360 frames) for the progress bar to be seen between 0 and 100, small enough to be quick.
MODELS = {
    **SMALL_MODELS,
    "preview-15s": {"backend": "procedural", "seconds": 15, "fps": 24, "portrait": "144x256", "landscape": "256x144"},
}


def chromium_path() -> str:
    found = os.environ.get("REELGATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Chromium is not installed (Debian: `apt-get install chromium`; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; the browser tests must run in CI")
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if os.environ.get("CI") == "true":
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_playground(browser: Any, url: str, **context: Any) -> tuple[Any, list[str]]:
    """A page on the playground served with `STRICT_CSP`; the list collects CSP violations from the console."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(90_000)  # a busy CI machine renders slowly
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else 0)

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(f"{url}/", with_csp)
    page.goto(f"{url}/")
    return page, violations


def use_key(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.click("#key-form button[type=submit]")


def wait_until_playable(page: Any) -> float:
    page.wait_for_function(
        "() => document.querySelector('#video-status').classList.contains('completed')", timeout=90_000
    )
    page.wait_for_function("() => document.querySelector('#video').readyState === 4")
    return float(page.eval_on_selector("#video", "video => video.duration"))


def test_make_watch_remix_and_delete_a_video(make_server: Any, browser: Any) -> None:
    server = make_server(MODELS)
    key = server.create_key("10")
    page, violations = open_playground(browser, server.url, locale="en-US", viewport={"width": 390, "height": 844})
    use_key(page, key)
    page.wait_for_selector("#model option[value='preview-15s']", state="attached")
    page.select_option("#model", "preview-15s")
    page.fill("#prompt", "A sunset over the sea")
    page.click("#create")

    page.wait_for_function("() => (p => p.value > 0 && p.value < 100)(document.querySelector('#video-progress'))")
    assert page.text_content("#video-status").startswith("generating")  # type: ignore[union-attr]
    assert wait_until_playable(page) == pytest.approx(15, abs=0.2)
    first = page.text_content("#video-id")
    assert page.get_attribute("#download", "href").endswith(".mp4")  # type: ignore[union-attr]

    page.fill("#remix-prompt", "make it night")
    page.click("#remix")
    page.wait_for_function("first => document.querySelector('#video-id').textContent !== first", arg=first)
    remix = page.text_content("#video-id")
    assert wait_until_playable(page) == pytest.approx(15, abs=0.2)
    page.wait_for_function("() => document.querySelectorAll('#videos li').length === 2")
    listed = page.eval_on_selector_all("#videos li", "items => items.map(item => item.dataset.id)")
    assert listed == [remix, first]

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    page.wait_for_function("() => document.querySelectorAll('#videos li').length === 1")
    assert page.is_hidden("#video-card") and page.is_hidden("#error")
    gone = httpx.get(f"{server.url}/v1/videos/{remix}", headers={"Authorization": key})
    assert gone.status_code == 404
    assert violations == []


def test_a_wrong_key_shows_the_servers_message(make_server: Any, browser: Any) -> None:
    server = make_server(MODELS)
    page, violations = open_playground(browser, server.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    assert page.text_content("h1").startswith("reelgate · 试用台")  # type: ignore[union-attr]
    wrong = new_secret()
    use_key(page, wrong)
    page.wait_for_selector("#error", state="visible")
    expected = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {wrong}"}).json()
    assert page.text_content("#error") == expected["error"]["message"]
    assert "reelgate keys create" in expected["error"]["message"]
    assert violations == []
