"""The opt-in player block: an HTML <video> after the provider's success block, off by default."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from reelgate.admin.local import LocalAdmin
from reelgate.admin.schemas import KeyUpdate, PageParams
from reelgate.render.chat_markdown import ChatMarkdown, Links
from tests.conftest import live_server, make_settings
from tests.render.test_chat_markdown import DONE, _run

PLAYER = re.compile(
    r'\n\n<div><video controls preload="metadata" poster="(?P<poster>[^"]+\.webp)" src="(?P<src>[^"]+)">'
    r"(?P<text>[^<]+)</video></div>$"
)


def test_the_player_follows_the_success_block_and_links_the_bare_mp4() -> None:
    plain = _run(ChatMarkdown(Links("https://v.example")), DONE)
    with_player = _run(ChatMarkdown(Links("https://v.example"), player=True), DONE)
    assert "<video" not in plain and with_player.startswith(plain)
    found = PLAYER.search(with_player)
    assert found is not None
    assert found["src"] == "https://v.example/cdn/20251030/181a1916dcfe0bb84cafed2427204c00.mp4"
    assert f"]({found['src']})" in plain and f"]({found['poster']})" in plain
    # Open WebUI plays the element's text; the browser uses `src`.
    assert found["text"] == found["src"]


async def test_the_admin_turns_a_keys_player_on_and_the_default_stays_off(tmp_path: Path) -> None:
    body = {"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": "海边日落"}]}
    async with live_server(make_settings(tmp_path)) as server, httpx.AsyncClient(timeout=60) as client:
        key = await server.create_key("10")
        url, headers = f"{server.url}/v1/chat/completions", {"Authorization": key}
        plain = (await client.post(url, json=body, headers=headers)).json()["choices"][0]["message"]["content"]
        admin = LocalAdmin(server.app.state.runtime.engine)
        key_id = (await admin.list_keys(PageParams())).data[0].id
        changed = await admin.update_key(key_id, KeyUpdate(player_block=True))
        assert changed.player_block is True
        body["messages"] = [{"role": "user", "content": "海边日出"}]
        shown = (await client.post(url, json=body, headers=headers)).json()["choices"][0]["message"]["content"]
        found = PLAYER.search(shown)
        assert "<video" not in plain and found is not None
        assert found["src"].endswith(".mp4") and "?" not in found["src"]
        video = await client.get(found["src"])
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
