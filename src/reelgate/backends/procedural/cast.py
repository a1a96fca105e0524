"""Characters in a procedural film: each character's key frame as a framed portrait standing in every shot.

The procedural renderer cannot redraw a subject in a new pose, so it shows the character as it was
uploaded: its key frame in a white frame with a soft shadow, side by side with the others in the middle
of the picture (above the caption), bobbing gently as the shot's subjects do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from reelgate.backends.base import CharacterRef
from reelgate.backends.procedural.layers import Sprite, blend
from reelgate.errors import GenerationError

#: A portrait's longer side, as a share of the frame's shorter side (shared when several stand together).
PORTRAIT_SHARE = 0.5
#: The white frame around a portrait, as a share of its longer side.
BORDER_SHARE = 0.05
#: How far a portrait bobs, as a share of the frame's height, and how often (per second).
BOB_SHARE, BOB_RATE = 0.015, 0.5


class Painter(Protocol):
    """What `CastPainter` wraps: a `ShotPainter` or an `OpeningPainter`."""

    def paint(self, i: int) -> np.ndarray: ...


def portraits(characters: Sequence[CharacterRef], width: int, height: int) -> list[Sprite]:
    """One framed portrait per character, sized so that all of them fit side by side."""
    side = round(min(width, height) * PORTRAIT_SHARE / max(1, math.sqrt(len(characters))))
    side = min(side, round(width * 0.9 / max(1, len(characters))))
    return [_portrait(character.frame, max(8, side)) for character in characters]


class CastPainter:
    """Paints `inner`'s frame, then the portraits in front of it."""

    def __init__(self, inner: Painter, cast: Sequence[Sprite], width: int, height: int, fps: int) -> None:
        self.inner, self.cast, self.fps = inner, list(cast), fps
        self.height = height
        gap = round(min(width, height) * 0.04)
        total = sum(sprite.rgb.shape[1] for sprite in self.cast) + gap * (len(self.cast) - 1)
        x = (width - total) // 2
        self.places: list[tuple[int, int]] = []
        for sprite in self.cast:
            h, w = sprite.rgb.shape[:2]
            self.places.append((x, round(height * 0.45) - h // 2))
            x += w + gap

    def paint(self, i: int) -> np.ndarray:
        frame = self.inner.paint(i)
        seconds = i / self.fps
        for k, (sprite, (x, y)) in enumerate(zip(self.cast, self.places, strict=True)):
            bob = self.height * BOB_SHARE * math.sin(2 * math.pi * BOB_RATE * seconds + k)
            blend(frame, sprite, x, round(y + bob))
        return frame


def _portrait(path: Path, side: int) -> Sprite:
    """The image at `path` within `side` x `side`, in a white frame with rounded corners and a shadow."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise GenerationError("A character's key frame cannot be read.", code="invalid_character") from exc
    border = max(1, round(side * BORDER_SHARE))
    inner = ImageOps.contain(rgb, (side - 2 * border, side - 2 * border), Image.Resampling.LANCZOS)
    w, h = inner.width + 2 * border, inner.height + 2 * border
    pad = border * 2  # room for the shadow
    card = Image.new("RGBA", (w + pad, h + pad), (0, 0, 0, 0))
    radius = border * 2
    shadow = Image.new("L", card.size, 0)
    ImageDraw.Draw(shadow).rounded_rectangle((pad, pad, w + pad - 1, h + pad - 1), radius, fill=110)
    card.putalpha(shadow.filter(ImageFilter.GaussianBlur(border)))
    frame = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(frame).rounded_rectangle((0, 0, w - 1, h - 1), radius, fill=(250, 250, 245, 255))
    frame.paste(inner, (border, border))
    card.alpha_composite(frame, (pad // 2, pad // 2))
    rgba = np.asarray(card)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    return Sprite(np.ascontiguousarray(rgba[:, :, :3]), alpha + (alpha > 0))
