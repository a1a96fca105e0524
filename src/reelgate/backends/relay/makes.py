"""What one call of an upstream model can make, and the refusal of an ask it cannot meet.

Each native protocol declares its `Makes` (some per upstream model: a Wan `-t2v-` model takes no image,
an `-i2v-` one needs it). A route checks an ask against it after the catalog's own mapping: a size the
catalog maps (`options.sizes`) is the operator's word and is sent as mapped; any other size must be of a
resolution tier the upstream makes, since the protocol would otherwise round it to one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from reelgate.backends.asks import Ask, Refusal
from reelgate.backends.base import Orientation

BOTH = (Orientation.PORTRAIT, Orientation.LANDSCAPE)
_RATIO = {Orientation.PORTRAIT: "portrait (9:16)", Orientation.LANDSCAPE: "landscape (16:9)"}


@dataclass(frozen=True)
class Makes:
    """One upstream model's range; the defaults take anything (what an OpenAI-style upstream checks itself)."""

    #: Orientations it makes from text (from an image, the image's own).
    orientations: tuple[Orientation, ...] = BOTH
    #: Resolution tiers (`"720p"`, a size's shorter side) of the sizes it makes; None: any size.
    tiers: tuple[str, ...] | None = None
    #: Text-to-video, and image-to-video.
    text: bool = True
    image: bool = True
    #: The durations one call makes (the plan's: `plans.DURATIONS` per kind); None: any. Another may still
    #: be made by chaining calls (`chaining.by_chain`), and is then not refused.
    seconds: tuple[int, ...] | None = None
    #: Whether the kind's own extension call (where it has one: `chaining.EXTENDS`) takes this model's
    #: videos; Veo's does only on Veo 3.1 models.
    extends: bool = True


def by_model_name(makes: Makes, model: str) -> Makes:
    """`makes` narrowed by a model name's `t2v` / `i2v` (Wan, Seedance lite and Hailuo 01 are named so)."""
    name = model.lower()
    if "i2v" in name:
        return replace(makes, text=False)
    if "t2v" in name:
        return replace(makes, image=False)
    return makes


def refusal(
    makes: Makes, ask: Ask, mapped_size: bool, sent_seconds: int | None = None, chained: bool = False
) -> Refusal | None:
    """Why `makes` cannot meet `ask`, or None. `sent_seconds`: the duration one call is asked for (as the
    catalog maps `ask.seconds`); `chained`: the plan meets `ask.seconds` by chaining calls
    (`chaining.by_chain`), so no one call need make it. Start-up already refuses an entry whose durations
    one call cannot make unless it chains; this keeps the API's answer right should the two ever part."""
    return (
        _image(makes, ask)
        or _orientation(makes, ask)
        or _size(makes, ask, mapped_size)
        or (None if chained else _seconds(makes, ask, sent_seconds))
    )


def _seconds(makes: Makes, ask: Ask, sent: int | None) -> Refusal | None:
    if sent is None or makes.seconds is None or sent in makes.seconds:
        return None
    return Refusal(
        "seconds",
        f"`{ask.model}` makes {_listing([str(s) for s in makes.seconds])} second videos in one call, "
        f"not {ask.seconds}.",
    )


def _image(makes: Makes, ask: Ask) -> Refusal | None:
    if ask.image and not makes.image:
        return Refusal(
            "image",
            f"`{ask.model}` makes videos from text only; it takes no reference image.",
            code="unsupported_parameter",
        )
    if not ask.image and not makes.text:
        return Refusal(
            "image",
            f"`{ask.model}` makes videos from an image only; send the image to start from.",
            code="missing_required_parameter",
        )
    return None


def _orientation(makes: Makes, ask: Ask) -> Refusal | None:
    if ask.image or ask.orientation is None or ask.orientation in makes.orientations:
        return None
    made = " or ".join(_RATIO[orientation] for orientation in makes.orientations)
    return Refusal(
        "orientation",
        f"`{ask.model}` makes {made} videos from text, not {_RATIO[ask.orientation]}; "
        "a reference image sets its own ratio.",
    )


def _size(makes: Makes, ask: Ask, mapped_size: bool) -> Refusal | None:
    if ask.size is None or makes.tiers is None or mapped_size or tier(ask.size) in makes.tiers:
        return None
    width, height = ask.size
    return Refusal(
        "size",
        f"`{ask.model}` makes {_listing(makes.tiers)} videos (the shorter side {_listing(t[:-1] for t in makes.tiers)}"
        f" pixels), not {width}x{height}.",
    )


def tier(size: tuple[int, int]) -> str:
    """A size's resolution tier: `(720, 1280)` -> `"720p"`."""
    return f"{min(size)}p"


def _listing(values: Iterable[str]) -> str:
    items = list(values)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
