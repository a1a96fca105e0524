"""Refusing at the API what a model's backend cannot make: 400 naming what it can, nothing charged.

Both surfaces ask the same question of the backend (`backends/asks.py`); each names the offending field
its own way: the Videos API by parameter (`seconds`, `size`, `input_reference`), chat as `messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelgate.backends.asks import VIDEOS_PARAMS, Ask, Part, Size, refusal_of
from reelgate.backends.base import Orientation
from reelgate.catalog import ModelEntry
from reelgate.errors import InvalidRequest
from reelgate.prompt import PromptSpec
from reelgate.runtime import Runtime


def require_possible(rt: Runtime, entry: ModelEntry, ask: Ask, params: Mapping[Part, str] | str) -> None:
    """InvalidRequest in the backend's words when it cannot make `ask`; `params` names the fields."""
    found = refusal_of(rt.backends.get(entry.backend), ask)
    if found is not None:
        param = params if isinstance(params, str) else params[found.part]
        raise InvalidRequest(found.message, param=param, code=found.code)


def videos_ask(entry: ModelEntry, fields: Mapping[str, Any], seconds: int, size: Size, image: bool) -> Ask:
    """A Videos API create as an ask: only what the request itself chose (defaults are the catalog's)."""
    chosen = fields.get("size") is not None
    return Ask(
        entry.name,
        orientation=(Orientation.PORTRAIT if size[1] > size[0] else Orientation.LANDSCAPE) if chosen else None,
        seconds=seconds if fields.get("seconds") is not None else None,
        size=size if chosen else None,
        image=image,
    )


def chat_ask(entry: ModelEntry, spec: PromptSpec, image: bool) -> Ask:
    """A chat request as an ask: the orientation its text named ("比例9:16"), and whether it sent an image."""
    return Ask(entry.name, orientation=spec.orientation if spec.explicit_orientation else None, image=image)


def check_videos(
    rt: Runtime, entry: ModelEntry, fields: Mapping[str, Any], seconds: int, size: Size, image: bool
) -> None:
    """The Videos API's check, after `seconds` and `size` were found among the entry's."""
    require_possible(rt, entry, videos_ask(entry, fields, seconds, size, image), VIDEOS_PARAMS)


def check_chat(rt: Runtime, entry: ModelEntry, spec: PromptSpec, image: bool) -> None:
    """The chat surface's check: everything came in `messages`."""
    require_possible(rt, entry, chat_ask(entry, spec, image), "messages")
