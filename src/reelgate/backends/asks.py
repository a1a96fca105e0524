"""What a request asks a model to make, checked against what its backend can make before admission.

The catalog says what a model may be asked for; a backend may make less of it in one call (an upstream
with landscape only, no image-to-video, fixed resolution tiers). Such a backend has a `refusal` method:
the API then answers 400 naming what is possible, before anything is charged, instead of the upstream
refusing later (a paid failure) or silently making something else.

    refusal_of(backend, Ask("hailuo-video", orientation=Orientation.PORTRAIT))
    -> Refusal("orientation", "`hailuo-video` makes landscape videos only from text ...")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from reelgate.backends.base import Orientation

Size = tuple[int, int]
#: Which part of the ask a refusal is about; each surface names it its own way (`VIDEOS_PARAMS`).
Part = Literal["seconds", "size", "orientation", "image"]

#: The Videos API's field for each part of an ask (the chat surface names `messages` for all).
VIDEOS_PARAMS: dict[Part, str] = {
    "seconds": "seconds",
    "size": "size",
    "orientation": "size",
    "image": "input_reference",
}


@dataclass(frozen=True)
class Ask:
    """One request's choices for a catalog model; None where the request left the entry's default."""

    model: str
    orientation: Orientation | None = None
    seconds: int | None = None
    size: Size | None = None
    #: Whether a reference image comes with it (image-to-video).
    image: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why a backend cannot make an ask, in words naming what it can make."""

    part: Part
    message: str
    code: str = "invalid_value"


class Refuses(Protocol):
    """Optional, for backends that make less than their catalog entries allow."""

    def refusal(self, ask: Ask) -> Refusal | None: ...


def refusal_of(backend: object, ask: Ask) -> Refusal | None:
    """What `backend` says against `ask`; None when it can make it (or checks nothing)."""
    check = getattr(backend, "refusal", None)
    return check(ask) if callable(check) else None
