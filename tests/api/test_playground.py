"""The playground at `/`: served by reelgate itself, in the reader's language, with no inline code."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize(
    ("accept_language", "lang", "words"),
    [
        ("en-US,en;q=0.9,zh;q=0.5", "en", ["playground", "API key", "Generate", "Your recent videos"]),
        ("zh-CN,zh;q=0.9,en;q=0.5", "zh", ["试用台", "API 密钥", "生成", "最近的视频"]),
        ("", "zh", ["试用台"]),
    ],
)
async def test_the_page_speaks_the_browsers_language(
    app_client: httpx.AsyncClient, accept_language: str, lang: str, words: list[str]
) -> None:
    page = await app_client.get("/", headers={"Accept-Language": accept_language})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == lang
    for word in words:
        assert word in page.text
    assert "{{" not in page.text


async def test_the_page_needs_no_inline_script_or_style(app_client: httpx.AsyncClient) -> None:
    page = (await app_client.get("/")).text
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all('src="/static/' in attrs or 'type="application/json"' in attrs for attrs in scripts)
    assert "<style" not in page and " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no onclick= and the like
    for name, kind in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
        served = await app_client.get(f"/static/{name}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(kind)
    assert (await app_client.get("/static/../app.py")).status_code == 404
    assert (await app_client.get("/static/nope.js")).status_code == 404


async def test_the_preview_page_links_back_to_the_playground(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/web/task_unknown")
    assert page.status_code == 404 and '<a href="/">' in page.text
