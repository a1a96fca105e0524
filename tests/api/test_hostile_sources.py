"""Odd but legal, and hostile, requests to the Videos API's extensions and characters that a review against
a live server found mishandled: each is answered as a user would expect, and a refusal changes nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select, update

from reelgate.billing.audit import verify_ledger
from reelgate.store.tables import api_keys, ledger, tasks
from tests.conftest import SMALL_MODELS, LiveServer, assert_openai_error, live_server, make_settings
from tests.inputs.clips import make_clip

MODELS: dict[str, Any] = {**SMALL_MODELS, "sora-2": {"portrait": "144x256", "landscape": "256x144", "fps": 8}}


def _client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)


async def _books(server: LiveServer) -> tuple[list[int], int, int]:
    """Every key's balance, and how many tasks and ledger entries there are."""
    async with server.app.state.runtime.engine.connect() as conn:
        assert await verify_ledger(conn) == []
        balances = list((await conn.scalars(select(api_keys.c.balance).order_by(api_keys.c.id))).all())
        n_tasks = await conn.scalar(select(func.count()).select_from(tasks))
        n_entries = await conn.scalar(select(func.count()).select_from(ledger))
    return balances, int(n_tasks or 0), int(n_entries or 0)


async def _set(server: LiveServer, task_id: str, **values: Any) -> None:
    async with server.app.state.runtime.engine.begin() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))


async def test_extensions_that_could_only_fail_or_grow_without_end_are_refused(tmp_path: Path) -> None:
    """A source whose files retention deleted used to be admitted, charged and failed; a chain of extensions
    grew past any length (4 + 20 + 20 + ... seconds). Both are now a 400 naming `video` before any charge."""
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            expired = await client.videos.create_and_poll(prompt="雪山", model="sora-2", poll_interval_ms=200)
            long = await client.videos.create_and_poll(prompt="海边", model="sora-2", poll_interval_ms=200)
        await _set(server, expired.id, files_expired=True)
        await _set(server, long.id, seconds=104)  # as a chain of extensions would have made it
        before = await _books(server)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:

            async def refused(video_id: str, seconds: str, words: str, code: str | None) -> None:
                body = {"prompt": "继续", "seconds": seconds, "video": {"id": video_id}}
                answer = await http.post("/v1/videos/extensions", json=body)
                assert_openai_error(answer, 400, code, "invalid_request_error")
                assert answer.json()["error"]["param"] == "video" and words in answer.json()["error"]["message"]

            await refused(expired.id, "4", "its files were deleted", None)
            await refused(long.id, "20", "at most 120 seconds", "invalid_value")
            await refused(long.id, "20", "it is 104 seconds long", "invalid_value")  # the same again, still nothing
            edit = await http.post("/v1/videos/edits", json={"prompt": "继续", "video": {"id": expired.id}})
            assert_openai_error(edit, 400, None)
        assert await _books(server) == before


async def test_a_chat_extension_of_a_video_that_cannot_go_on_is_refused(tmp_path: Path) -> None:
    """A chat's "延长 4 秒" after a reply whose files retention deleted, or past the 120 s cap, was charged and
    then failed; now it is a 400 naming `messages`, like the Videos API's extension."""
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        first_turn = [{"role": "user", "content": "阳光下的绿色森林，横屏"}]
        async with _client(server, key) as client:
            first = await client.chat.completions.create(model="sora-2-hd-15s-chat", messages=first_turn)  # type: ignore[arg-type]
        reply = first.choices[0].message.content or ""
        parent = reply.split("ID: `")[1].split("`")[0]
        second_turn = [*first_turn, {"role": "assistant", "content": reply}, {"role": "user", "content": "延长 4 秒"}]
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            for values, words, code in (
                ({"files_expired": True}, "its files were deleted", None),
                ({"seconds": 118}, "at most 120", "invalid_value"),
            ):
                await _set(server, parent, **{"files_expired": False, **values})
                before = await _books(server)
                body = {"model": "sora-2-hd-15s-chat", "messages": second_turn, "stream": True}
                answer = await http.post("/v1/chat/completions", json=body)
                assert_openai_error(answer, 400, code, "invalid_request_error")
                assert answer.json()["error"]["param"] == "messages" and words in answer.json()["error"]["message"]
                assert await _books(server) == before


@pytest.mark.parametrize(
    "name",
    [
        "\U0001f469\u200d\U0001f469\u200d\U0001f467 Family",  # an emoji ZWJ sequence
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, written with a zero-width non-joiner
        "\u0645\u0631\u062d\u0628\u0627\u200f Mira",  # a right-to-left mark between scripts
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scot",  # a subdivision flag
    ],
    ids=["zwj-emoji", "zwnj-persian", "rlm", "tag-flag"],
)
async def test_names_written_with_joiners_and_marks_are_names(tmp_path: Path, name: str) -> None:
    """They used to be refused as 'control characters'; a prompt's @Name finds them like any other."""
    clip = make_clip(tmp_path / "face.mp4", seconds=1.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            character = await client.videos.create_character(name=name, video=("face.mp4", clip, "video/mp4"))
            assert character.name == name
            assert (await client.videos.get_character(character.id)).name == name
            video = await client.videos.create(prompt=f"@{name} waves hello", model="sora-2")
        async with server.app.state.runtime.engine.connect() as conn:
            chosen = await conn.scalar(select(tasks.c.characters).where(tasks.c.id == video.id))
        assert json.loads(chosen) == [character.id]


async def test_a_bidi_override_in_a_name_is_still_refused(tmp_path: Path) -> None:
    """An override can make one name read as another, so it stays a 400 that stores nothing."""
    clip = make_clip(tmp_path / "face.mp4", seconds=1.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            answer = await http.post(
                "/v1/videos/characters",
                data={"name": "Mira \u202eevil"},
                files={"video": ("face.mp4", clip, "video/mp4")},
            )
            assert_openai_error(answer, 400, "invalid_value", "invalid_request_error")
            assert (await http.get("/v1/videos/characters")).json()["data"] == []


async def test_an_empty_after_is_the_first_page(tmp_path: Path) -> None:
    """`after=` used to be read as a cursor before every id: all rows ascending, none descending."""
    clip = make_clip(tmp_path / "face.mp4", seconds=1.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            made = [await client.videos.create_character(name=n, video=("f.mp4", clip, "video/mp4")) for n in "ab"]
            video = await client.videos.create(prompt="雨中", model="sora-2")
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            for order in ("asc", "desc"):
                page = (await http.get(f"/v1/videos/characters?after=&order={order}")).json()
                ids = [character.id for character in made]
                assert [item["id"] for item in page["data"]] == (ids if order == "asc" else ids[::-1])
                videos = (await http.get(f"/v1/videos?after=&order={order}")).json()
                assert [item["id"] for item in videos["data"]] == [video.id]


async def test_concurrent_uploads_share_a_few_ffmpeg_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each probe is a child Python with FFmpeg (~80 MB) and each key-frame decode ~60 MB for 4K: 30 small
    uploads at once used to start 30 probes (the server's processes took ~1 GB more). Now they wait their
    turn, and every one is still answered."""
    from reelgate.inputs import videos

    running, most, lock = 0, 0, threading.Lock()

    def enter() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    def counted(reader: Any) -> Any:
        async def probe(*args: Any) -> Any:
            enter()
            try:
                return await reader(*args)
            finally:
                leave()

        return probe

    def decoded(*args: Any) -> Any:  # in a worker thread
        enter()
        try:
            return key_frames(*args)
        finally:
            leave()

    key_frames = videos.key_frames
    monkeypatch.setattr(videos, "READERS_AT_ONCE", 2)
    monkeypatch.setattr(videos, "_probe", counted(videos._probe))
    monkeypatch.setattr(videos, "key_frames", decoded)
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:

            async def upload(index: int) -> int:
                if index % 2:
                    form = {"data": {"name": f"Mira {index}"}, "files": {"video": ("c.mp4", clip, "video/mp4")}}
                    return (await http.post("/v1/videos/characters", timeout=120, **form)).status_code
                form = {"data": {"prompt": f"下雪 {index}"}, "files": {"video": ("c.mp4", clip, "video/mp4")}}
                return (await http.post("/v1/videos/edits", timeout=120, **form)).status_code

            answers = await asyncio.gather(*(upload(index) for index in range(10)))
    assert answers == [200] * 10
    assert most == 2


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ("@小明在公园里跑步", ["小明"]),  # Chinese puts no space after a name
        ("＠小明和＠Ｍｉｒａ跳舞", ["小明", "Mira"]),  # an input method's full-width @ and letters
        ("@Mira在跑步", ["Mira"]),
        ("@Zoe\u0308 waves", ["Zoë"]),  # a decomposed ë, as some keyboards send it
        ("write to bob@mira.com", []),  # an e-mail address, not a mention
        ("@Miranda dances", []),  # another word that starts with the name
    ],
)
async def test_at_mentions_as_people_type_them(tmp_path: Path, prompt: str, named: list[str]) -> None:
    """`@小明在跑步` and `＠小明` used to name nobody (a CJK character counted as part of the name; the
    full-width forms were other characters), and `bob@mira.com` named Mira."""
    clip = make_clip(tmp_path / "face.mp4", seconds=1.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        async with _client(server, key) as client:
            cast = {
                name: await client.videos.create_character(name=name, video=("f.mp4", clip, "video/mp4"))
                for name in ("小明", "Mira", "Zoë")
            }
            video = await client.videos.create(prompt=prompt, model="sora-2")
        async with server.app.state.runtime.engine.connect() as conn:
            chosen = await conn.scalar(select(tasks.c.characters).where(tasks.c.id == video.id))
        assert (json.loads(chosen) if chosen else []) == [cast[name].id for name in named]


async def test_characters_and_videos_share_the_keys_rpm(tmp_path: Path, database_url: str) -> None:
    """A character counted against the rpm when it was made, but a video did not count the characters:
    with rpm 2, two characters then an edit made three requests in the minute."""
    from reelgate.billing.keys import create_key
    from reelgate.money import parse_credits

    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0).read_bytes()
    async with live_server(make_settings(tmp_path, models=MODELS, database_url=database_url)) as server:
        async with server.app.state.runtime.engine.begin() as conn:
            _, key = await create_key(conn, balance=parse_credits("10"), rpm_limit=2)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            for name in ("Mira", "小明"):
                made = await http.post("/v1/videos/characters", data={"name": name}, files={"video": ("c.mp4", clip)})
                assert made.status_code == 200, made.text
            before = await _books(server)
            for path, form in (
                ("/v1/videos/edits", {"data": {"prompt": "下雪"}, "files": {"video": ("c.mp4", clip, "video/mp4")}}),
                ("/v1/videos", {"data": {"prompt": "@Mira 下雪", "model": "sora-2"}}),
            ):
                answer = await http.post(path, **form)
                assert_openai_error(answer, 429, "rate_limit_exceeded", "requests")
                assert 0 < int(answer.headers["retry-after"]) <= 60
            assert await _books(server) == before


async def test_a_form_the_parser_refuses_is_an_invalid_form(tmp_path: Path) -> None:
    """A second `video` file or more than 20 fields used to come back as Starlette's bare 400 with no code."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0).read_bytes()
    twice = [("video", ("a.mp4", clip, "video/mp4")), ("video", ("b.mp4", clip, "video/mp4"))]
    async with live_server(make_settings(tmp_path, models=MODELS)) as server:
        key = await server.create_key("10")
        before = await _books(server)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as http:
            for path, fields in (
                ("/v1/videos/edits", {"prompt": "下雪"}),
                ("/v1/videos/extensions", {"prompt": "下雪", "seconds": "4"}),
                ("/v1/videos/characters", {"name": "Mira"}),
                ("/v1/videos", {"prompt": "下雪", **{f"x{n}": "1" for n in range(25)}}),
            ):
                answer = await http.post(path, data=fields, files=twice)
                assert_openai_error(answer, 400, "invalid_form", "invalid_request_error")
            assert (await http.get("/v1/videos/characters")).json()["data"] == []
        assert await _books(server) == before
