"""Which characters a request refers to: OpenAI's `characters` array of `{"id": ...}`, and `@Name` in a prompt.

OpenAI's guide has the caller list the ids and also name the character in the prompt; chat clients have no
array, so there an `@` before a character's name (or id) refers to it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from reelgate.characters.models import Character
from reelgate.errors import InvalidRequest

#: The form field the `openai` package writes for each `{"id": ...}` of a `characters` array.
FORM_FIELD = "characters[][id]"


def requested_ids(value: Any, param: str = "characters") -> list[str]:
    """The ids in a `characters` value: `[{"id": "char_..."}, ...]` (or bare id strings, as a form sends them).

    >>> requested_ids([{"id": "char_1"}, "char_2"])
    ['char_1', 'char_2']
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f'\'{param}\' must be an array of {{"id": "char_..."}} objects.', param=param)
    return [_one_id(item, param) for item in value]


#: What an `@` is typed as: ASCII, and the full-width and small forms of CJK input methods (NFKC makes them `@`).
AT_SIGNS = ("@", "\uff20", "\ufe6b")


def may_mention(prompt: str) -> bool:
    """Whether the prompt has an `@` at all (most have none, and need no look-up of characters)."""
    return any(sign in prompt for sign in AT_SIGNS)


def mentioned(prompt: str, candidates: Iterable[Character]) -> list[Character]:
    """Those of `candidates` the prompt names as `@Name` or `@char_...` (any case and width: an input
    method's `＠小明` too), in the prompt's order.

    A longer name wins over a shorter one it starts with (`@Mira Bell` is not `@Mira`); an `@` that names
    no candidate is left alone (it may be an e-mail address or a handle).
    """
    text = _folded(prompt)
    found: list[tuple[int, Character]] = []
    handles = sorted(((_folded(h), c) for c in candidates for h in (c.name, c.id)), key=lambda pair: -len(pair[0]))
    for handle, character in handles:
        at = _find(text, "@" + handle)
        if at >= 0 and all(c.id != character.id for _, c in found):
            found.append((at, character))
            text = text[:at] + " " * (len(handle) + 1) + text[at + len(handle) + 1 :]
    return [character for _, character in sorted(found, key=lambda pair: pair[0])]


def _folded(text: str) -> str:
    """Case and width folded (NFKC), so that `＠Ｍｉｒａ`, `@mira` and a decomposed `ë` compare as typed."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _find(text: str, needle: str) -> int:
    """Where `needle` stands in `text` as a whole word (`@Mira` is not in `@Miranda` nor in `bob@mira.com`);
    -1 if nowhere. Chinese and Japanese run on without spaces, so a wide character after the name is a
    word's edge: `@小明在跑步` names 小明."""
    start = text.find(needle)
    while start >= 0:
        end = start + len(needle)
        in_address = start > 0 and _spaced_word(text[start - 1])
        runs_on = end < len(text) and _spaced_word(text[end]) and not _wide(needle[-1])
        if not (in_address or runs_on):
            return start
        start = text.find(needle, start + 1)
    return -1


def _spaced_word(char: str) -> bool:
    """A letter, digit or `_` of a script that puts spaces between words (not a wide CJK character)."""
    return (char.isalnum() or char == "_") and not _wide(char)


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _one_id(item: Any, param: str) -> str:
    value = item.get("id") if isinstance(item, dict) else item
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f'Each item of \'{param}\' must be an object {{"id": "char_..."}}.', param=param)
    return value.strip()
