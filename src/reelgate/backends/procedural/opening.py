"""Image-to-video: the film opens on the user's image, and its first shot slowly moves into it.

Frame 0 is the image itself. The first shot then pushes in and drifts along the shot's camera move
(a Ken Burns move), while the shot's subjects, weather and caption fade in over the first second.
The image's dominant colours tint every shot's palette, so the procedural shots that follow look
like the same place.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.layers import mix
from reelgate.backends.procedural.lexicon import RGB
from reelgate.backends.procedural.scene import Overlay
from reelgate.backends.procedural.script import Shot, Storyboard
from reelgate.errors import GenerationError

PUSH_IN = 0.15  #: how much closer the camera is at the end of the opening shot (1.15x)
FADE_IN_SECONDS = 1.0
#: How far each palette role (sky top, sky bottom, land, subject, accent) moves toward the image's colour.
TINT = (0.7, 0.7, 0.7, 0.4, 0.4)


def load_opening(path: Path, width: int, height: int) -> np.ndarray:
    """The image at `path` as RGB of exactly `width` x `height` (cropped to fit, should it not already)."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as exc:  # a missing file, or not an image Pillow can read
        raise GenerationError("the first frame image cannot be read", code="invalid_first_frame") from exc
    if rgb.size != (width, height):
        rgb = ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS)
    return np.array(rgb)


def image_palette(image: np.ndarray) -> tuple[RGB, ...]:
    """The image's colours in the storyboard's palette roles: the dominant colour of its top, middle and
    bottom third (sky top, sky bottom, land), then its two most vivid dominant colours (subject, accent)."""
    small = Image.fromarray(image).resize((48, 48), Image.Resampling.BOX).quantize(6, Image.Quantize.MEDIANCUT)
    index = np.asarray(small)
    colors = np.asarray(small.getpalette() or [0, 0, 0], np.int64).reshape(-1, 3)[: int(index.max()) + 1]
    counts = np.bincount(index.ravel(), minlength=len(colors))
    thirds = [np.bincount(part.ravel(), minlength=len(colors)).argmax() for part in np.array_split(index, 3)]
    used = np.flatnonzero(counts)
    chroma = colors[used].max(axis=1) - colors[used].min(axis=1)
    vivid = used[np.lexsort((-counts[used], -chroma))]  # most colourful first, the commoner on a tie
    roles = [*thirds, vivid[0], vivid[min(1, len(vivid) - 1)]]
    return tuple(_rgb(colors[k]) for k in roles)


def tinted(board: Storyboard, colors: tuple[RGB, ...]) -> Storyboard:
    """`board` with every shot's palette moved toward `colors` (see `TINT`)."""
    shots = tuple(replace(shot, palette=_toward(shot.palette, colors)) for shot in board.shots)
    return replace(board, shots=shots)


class OpeningPainter:
    """Paints the first shot of an image-to-video film (same `paint(i)` as `ShotPainter`)."""

    def __init__(self, shot: Shot, image: np.ndarray, fps: int, fonts: FontFinder) -> None:
        self.shot, self.fps = shot, fps
        self.height, self.width = image.shape[:2]
        self.image = Image.fromarray(image)
        self.overlay = Overlay(shot, self.width, self.height, fonts, np.random.default_rng(shot.seed))

    def paint(self, i: int) -> np.ndarray:
        t = i / max(1, self.shot.frames - 1)  # 0..1 through the shot
        frame = self._camera(t)
        self.overlay.draw(frame, i / self.fps, FADE_IN_SECONDS)
        return frame

    def _camera(self, t: float) -> np.ndarray:
        """The image seen through a camera that pushes in steadily and drifts along the shot's pan."""
        zoom = 1 + PUSH_IN * t
        ease = t * t * (3 - 2 * t)
        w, h = self.width / zoom, self.height / zoom
        dx, dy = self.shot.pan
        x = (self.width - w) * (0.5 + 0.5 * dx * ease)
        y = (self.height - h) * (0.5 + 0.5 * dy * ease)
        view = self.image.resize((self.width, self.height), Image.Resampling.BILINEAR, box=(x, y, x + w, y + h))
        return np.array(view)


def _toward(palette: tuple[RGB, ...], colors: tuple[RGB, ...]) -> tuple[RGB, ...]:
    return tuple(mix(own, image, weight) for own, image, weight in zip(palette, colors, TINT, strict=True))


def _rgb(color: np.ndarray) -> RGB:
    return (int(color[0]), int(color[1]), int(color[2]))
