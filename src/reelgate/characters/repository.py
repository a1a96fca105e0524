"""SQL for characters. Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from reelgate.characters.models import Character
from reelgate.store.paging import Page, PageRequest, fetch_page
from reelgate.store.tables import characters


async def insert_character(conn: AsyncConnection, character: Character) -> None:
    values = {**character.__dict__, "frames": json.dumps(list(character.frames))}
    await conn.execute(insert(characters).values(values))


async def get_character(conn: AsyncConnection, character_id: str) -> Character | None:
    query = select(characters).where(characters.c.id == character_id, characters.c.deleted_at.is_(None))
    row = (await conn.execute(query)).one_or_none()
    return Character.from_row(row) if row else None


async def page_for_key(conn: AsyncConnection, key_id: str, page: PageRequest) -> Page[Character]:
    query = select(characters).where(characters.c.key_id == key_id, characters.c.deleted_at.is_(None))
    return await fetch_page(conn, query, characters.c.id, page, Character.from_row)


async def all_for_key(conn: AsyncConnection, key_id: str, limit: int) -> list[Character]:
    """The key's newest `limit` characters (what a prompt's @mentions are looked up in)."""
    query = (
        select(characters)
        .where(characters.c.key_id == key_id, characters.c.deleted_at.is_(None))
        .order_by(characters.c.id.desc())
        .limit(limit)
    )
    return [Character.from_row(row) for row in await conn.execute(query)]


async def referenced_frames(conn: AsyncConnection, keys: Collection[str]) -> set[str]:
    """Those of `keys` that are some character's key frames (the orphan sweep must keep them)."""
    wanted = list(keys)
    if not wanted:
        return set()
    query = select(characters.c.frames).where(
        or_(*(characters.c.frames.contains(key, autoescape=True) for key in wanted))
    )
    stored = {frame for frames in await conn.scalars(query) for frame in json.loads(frames)}
    return stored & set(wanted)
