"""The character record. Not the SQL table (`store/tables.py`), not the wire shape (`api/schemas.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ulid import ULID

#: Key frames kept per character (PNG, evenly spaced through the clip).
KEY_FRAMES = 4
#: The longer side of a stored key frame, in pixels.
KEY_FRAME_SIDE = 512


@dataclass(frozen=True)
class Character:
    id: str
    key_id: str
    name: str
    #: Storage keys of the key frames, in the clip's order.
    frames: tuple[str, ...]
    width: int
    height: int
    created_at: datetime
    deleted_at: datetime | None = None

    @property
    def portrait(self) -> str:
        """The key frame a video shows of the character: the middle one (a clip's ends are often a fade)."""
        return self.frames[len(self.frames) // 2]

    @classmethod
    def from_row(cls, row: Any) -> Character:
        values = dict(row._mapping)
        return cls(**{**values, "frames": tuple(json.loads(values["frames"]))})


def new_character_id() -> str:
    """`char_` + lower-case ULID, sortable by creation time (list pages use it as their cursor)."""
    return f"char_{str(ULID()).lower()}"
