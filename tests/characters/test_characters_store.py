"""The character service on SQLite and PostgreSQL: per-key reads, paging, @mentions, rpm, kept key frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing.keys import ApiKey, create_key, get_key
from reelgate.billing.limits import Limits
from reelgate.characters import repository as repo
from reelgate.characters.service import CharacterService, check_name
from reelgate.errors import InvalidRequest, NotFound, RateLimited
from reelgate.storage.local import LocalStorage
from reelgate.store.paging import PageRequest


async def _key(engine: AsyncEngine) -> ApiKey:
    async with engine.begin() as conn:
        key, _ = await create_key(conn, balance=0)
        return await get_key(conn, key.id)


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (32, 48), (k * 60, 20, 200)) for k in range(4)]


async def test_a_keys_characters(engine: AsyncEngine, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    service = CharacterService(engine, storage, Limits(rpm=0, concurrency=0))
    owner, stranger = await _key(engine), await _key(engine)
    mira, _ = await service.create(owner, "Mira", _frames(), (32, 48))
    bell, _ = await service.create(owner, "Mira Bell", _frames(), (32, 48))
    assert (await service.get_for_key(owner, mira.id)).frames == mira.frames and len(mira.frames) == 4
    with pytest.raises(NotFound):
        await service.get_for_key(stranger, mira.id)
    first = await service.page_for_key(owner, PageRequest(limit=1, descending=True))
    rest = await service.page_for_key(owner, PageRequest(limit=1, after=first.items[0].id, descending=True))
    assert [c.id for c in first.items + rest.items] == [bell.id, mira.id] and first.has_more and not rest.has_more
    assert (await service.page_for_key(stranger, PageRequest())).items == []

    found = await service.referenced(owner, [mira.id], "@MIRA BELL and @mira meet @nobody@example.com")
    assert [c.id for c in found] == [mira.id, bell.id]
    assert await service.referenced(stranger, [], "@Mira dances") == ()
    with pytest.raises(InvalidRequest) as refused:
        await service.referenced(stranger, [mira.id], "x")
    assert refused.value.param == "characters" and mira.id in refused.value.message

    async with engine.connect() as conn:
        kept = await repo.referenced_frames(conn, [mira.frames[0], bell.portrait, "20990101/none.png"])
    assert kept == {mira.frames[0], bell.portrait}


async def test_creations_count_against_the_keys_rpm(engine: AsyncEngine, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    service = CharacterService(engine, storage, Limits(rpm=2, concurrency=0))
    key = await _key(engine)
    for name in ("a", "b"):
        await service.create(key, name, _frames(), (32, 48))
    with pytest.raises(RateLimited):
        await service.create(key, "c", _frames(), (32, 48))
    assert len([p for p in (tmp_path / "media").rglob("*.png")]) == 8  # the refused one's frames are gone


@pytest.mark.parametrize("name", ["", "  ", "x" * 81, "a\nb", "a\u200bb", None, 7])
def test_names_refused(name: object) -> None:
    with pytest.raises(InvalidRequest):
        check_name(name)


def test_names_accepted() -> None:
    assert check_name("  侦探 Mira-2 ") == "侦探 Mira-2" and check_name("x" * 80) == "x" * 80
