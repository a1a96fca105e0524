"""The character service: create (rate-limited, not charged), read and list a key's characters, and find
the ones a video request refers to. It knows nothing of HTTP; the router decodes the uploaded clip.
"""

from __future__ import annotations

import asyncio
import tempfile
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.billing.keys import ApiKey
from reelgate.billing.limits import Limits, RateState, rate_state
from reelgate.characters import repository as repo
from reelgate.characters.mentions import may_mention, mentioned
from reelgate.characters.models import Character, new_character_id
from reelgate.errors import InvalidRequest, NotFound, RateLimited
from reelgate.storage.base import Storage
from reelgate.store.paging import Page, PageRequest
from reelgate.store.tables import api_keys

#: OpenAI's limit on a character's display name.
MAX_NAME_CHARS = 80
#: Invisible format characters that are part of how names are written, not control characters: the zero-width
#: non-joiner and joiner (Persian, Indic scripts, emoji sequences such as a family of three), the left-to-right
#: and right-to-left marks, and the tag characters of subdivision flags (Scotland's). Bidi overrides and
#: isolates, which can make a name read as another, stay refused.
NAME_FORMAT_CHARS = frozenset("\u200c\u200d\u200e\u200f" + "".join(map(chr, range(0xE0020, 0xE0080))))
#: Characters one video may refer to.
MAX_PER_VIDEO = 4
#: How many of a key's newest characters a prompt's @mentions are looked up in.
MENTION_CANDIDATES = 500


def check_name(value: object, param: str = "name") -> str:
    """The display name, stripped: 1 to 80 characters, none of them control characters; 400 otherwise.

    >>> check_name("  Detective Mira ")
    'Detective Mira'
    """
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid type for '{param}': expected a string.", param=param, code="invalid_type")
    name = value.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(
            f"Invalid '{param}': a character's name has 1 to {MAX_NAME_CHARS} characters.",
            param=param,
            code="invalid_value",
        )
    if any(unicodedata.category(ch).startswith("C") and ch not in NAME_FORMAT_CHARS for ch in name):
        raise InvalidRequest(
            f"Invalid '{param}': a character's name may not contain control characters.",
            param=param,
            code="invalid_value",
        )
    return name


class CharacterService:
    def __init__(self, engine: AsyncEngine, storage: Storage, limits: Limits) -> None:
        self._engine = engine
        self._storage = storage
        self._limits = limits

    async def create(
        self, key: ApiKey, name: str, frames: Sequence[Image.Image], size: tuple[int, int]
    ) -> tuple[Character, RateState]:
        """Store the key frames as PNGs and record the character; nothing stays behind when it is refused."""
        now = datetime.now(UTC)
        stored = await self._store_frames(frames)
        character = Character(new_character_id(), key.id, name, tuple(stored), size[0], size[1], now)
        try:
            async with self._engine.begin() as conn:
                await _lock_key(conn, key.id)
                rate = await self._enforce(conn, key, now)
                await repo.insert_character(conn, character)
        except BaseException:
            for frame in stored:
                await self._storage.delete(frame)
            raise
        return character, rate

    async def get_for_key(self, key: ApiKey, character_id: str) -> Character:
        """The key's own character; another key's is as missing as an unknown one (404)."""
        async with self._engine.connect() as conn:
            character = await repo.get_character(conn, character_id)
        if character is None or character.key_id != key.id:
            raise NotFound(f"Character with id '{character_id}' not found.", param="character_id")
        return character

    async def page_for_key(self, key: ApiKey, page: PageRequest) -> Page[Character]:
        async with self._engine.connect() as conn:
            return await repo.page_for_key(conn, key.id, page)

    async def referenced(
        self, key: ApiKey, ids: Sequence[str], prompt: str, param: str = "characters"
    ) -> tuple[Character, ...]:
        """The characters a video request refers to: those `ids` name (each the key's own, else a 400
        naming it), then those the prompt @mentions; at most `MAX_PER_VIDEO`."""
        if not ids and not may_mention(prompt):
            return ()  # most requests refer to none: they take no connection (every chat passes here)
        async with self._engine.connect() as conn:
            chosen = [await self._own(conn, key, character_id, param) for character_id in dict.fromkeys(ids)]
            if may_mention(prompt):
                chosen += mentioned(prompt, await repo.all_for_key(conn, key.id, MENTION_CANDIDATES))
        unique = tuple({character.id: character for character in chosen}.values())
        if len(unique) > MAX_PER_VIDEO:
            raise InvalidRequest(f"A video may refer to at most {MAX_PER_VIDEO} characters.", param=param)
        return unique

    async def _own(self, conn: AsyncConnection, key: ApiKey, character_id: str, param: str) -> Character:
        character = await repo.get_character(conn, character_id)
        if character is None or character.key_id != key.id:
            raise InvalidRequest(
                f"Unknown character '{character_id}': no such character for this API key.", param=param
            )
        return character

    async def _enforce(self, conn: AsyncConnection, key: ApiKey, now: datetime) -> RateState:
        """The key's requests-per-minute limit, counting its new videos and characters alike."""
        limits = self._limits.for_key(key)
        state = await rate_state(conn, key.id, limits, now)
        reset = state.reset_seconds or 60
        if limits.rpm and state.used >= limits.rpm:
            raise RateLimited(
                f"Rate limit reached: {limits.rpm} requests per minute. Try again in {reset}s.", retry_after=reset
            )
        return RateState(limits.rpm, state.used + 1, reset)

    async def _store_frames(self, frames: Sequence[Image.Image]) -> list[str]:
        stored: list[str] = []
        try:
            with tempfile.TemporaryDirectory() as scratch:
                for index, frame in enumerate(frames):
                    path = Path(scratch) / f"frame{index}.png"
                    await asyncio.to_thread(frame.convert("RGB").save, path, "PNG")
                    stored.append(await self._storage.put(path, "png"))
        except BaseException:
            for key in stored:
                await self._storage.delete(key)
            raise
        return stored


async def _lock_key(conn: AsyncConnection, key_id: str) -> None:
    """The key's row lock, as task admission takes it: a key's creations are counted one at a time."""
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(balance=api_keys.c.balance))
