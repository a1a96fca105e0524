"""The pieces a shot is painted from, each made once per shot: sky, scenery, subject sprites, weather.

Arrays are uint8 RGB (and a separate alpha or mask) so that compositing a frame is mostly copying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from reelgate.backends.procedural.lexicon import RGB

SUPERSAMPLE = 3


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def gradient(height: int, width: int, top: RGB, bottom: RGB) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    column = np.asarray(top, np.float32) * (1 - ramp) + np.asarray(bottom, np.float32) * ramp
    return np.broadcast_to(column[:, None, :], (height, width, 3))


def sky(height: int, width: int, top: RGB, bottom: RGB, rng: np.random.Generator) -> np.ndarray:
    """A vertical gradient with soft clouds of light, big enough to pan across."""
    base = gradient(height, width, top, bottom)
    coarse = rng.uniform(-1, 1, (max(2, height // 160), max(2, width // 160))).astype(np.float32)
    clouds = Image.fromarray(((coarse + 1) * 127.5).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    texture = (np.asarray(clouds, np.float32) - 127.5) / 127.5 * 22.0
    return np.clip(base + texture[:, :, None], 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Band:
    """A strip of scenery along the bottom of the frame, wider than the frame so it can slide."""

    rgb: np.ndarray  #: (height, width, 3)
    mask: np.ndarray  #: (height, width, 3) bool: where the scenery is, per channel (copies need no broadcast)
    top: int  #: frame row where the strip starts
    profile: np.ndarray  #: (width,) float: the row where the scenery begins in each column

    def paste(self, frame: np.ndarray, start: int, width: int) -> None:
        """Draw columns `start:start + width` over the bottom of `frame`.

        Rows below the window's highest silhouette row are solid and copied whole; only the rows
        between its highest and lowest outline need the mask.
        """
        columns = slice(start, start + width)
        outline = self.profile[columns]
        first, solid = int(outline.min()), min(self.rgb.shape[0], int(np.ceil(outline.max())))
        rows = slice(self.top + first, self.top + solid)
        np.copyto(frame[rows], self.rgb[first:solid, columns], where=self.mask[first:solid, columns])
        frame[self.top + solid :] = self.rgb[solid:, columns]


def scenery(kind: str, width: int, height: int, color: RGB, accent: RGB, top: int, rng: np.random.Generator) -> Band:
    """Silhouettes of `kind` in `color`, shading to darker at the bottom; city windows lit in `accent`."""
    profile = _profiles[kind](width, height, rng)
    rows = np.arange(height)[:, None]
    mask = rows >= profile[None, :]
    rgb = np.ascontiguousarray(gradient(height, width, color, mix(color, (0, 0, 0), 0.55)).astype(np.uint8))
    if kind == "city":
        _windows(rgb, mask, profile, accent, rng)
    return Band(rgb, np.repeat(mask[:, :, None], 3, axis=2), top, np.clip(profile, 0, height))


def _hills(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    x = np.arange(width) / width
    waves = np.sum([rng.uniform(0.05, 0.12) * np.sin(2 * np.pi * (k * x + rng.uniform())) for k in (1, 2, 3)], axis=0)
    return (height * (0.45 + waves)).clip(0, height - 1)


def _mountains(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    x = np.arange(width) / width
    peaks = np.zeros(width)
    for k in (2, 3, 5, 9):
        peaks += rng.uniform(0.3, 1.0) / k * np.abs(np.sin(np.pi * (k * x + rng.uniform())))
    return (height * (0.95 - 0.75 * peaks / peaks.max())).clip(0, height - 1)


def _city(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    profile = np.empty(width)
    x = 0
    while x < width:
        span = int(rng.integers(max(4, width // 40), max(8, width // 12)))
        profile[x : x + span] = height * rng.uniform(0.15, 0.7)
        x += span
    return profile


def _forest(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    profile = np.full(width, height * 0.85)
    for _ in range(max(8, width // 30)):
        center, half = rng.uniform(0, width), rng.uniform(width / 80, width / 30)
        peak = height * rng.uniform(0.1, 0.6)
        x = np.arange(width)
        tree = peak + (np.abs(x - center) / half) * (height - peak) * 0.5
        profile = np.minimum(profile, np.where(np.abs(x - center) < half * 2, tree, height))
    return profile.clip(0, height - 1)


def _waves(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    x = np.arange(width) / width
    crest = 0.04 * np.sin(2 * np.pi * 14 * x) + 0.02 * np.sin(2 * np.pi * (31 * x + rng.uniform()))
    return height * (0.35 + crest)


def _desert(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    x = np.arange(width) / width
    dunes = 0.12 * np.sin(2 * np.pi * (1.5 * x + rng.uniform())) ** 2 + 0.05 * np.sin(2 * np.pi * 4 * x)
    return height * (0.55 - dunes)


_profiles = {
    "hills": _hills,
    "mountains": _mountains,
    "city": _city,
    "forest": _forest,
    "waves": _waves,
    "desert": _desert,
}


def _windows(rgb: np.ndarray, mask: np.ndarray, profile: np.ndarray, accent: RGB, rng: np.random.Generator) -> None:
    height, width = mask.shape
    size = max(2, width // 300)
    ys, xs = np.meshgrid(np.arange(0, height, size * 3), np.arange(0, width, size * 3), indexing="ij")
    lit = (rng.uniform(size=ys.shape) < 0.35) & (ys > profile[xs] + size * 2)
    for dy in range(size):
        for dx in range(size):
            rgb[np.minimum(ys[lit] + dy, height - 1), np.minimum(xs[lit] + dx, width - 1)] = accent


@dataclass(frozen=True)
class Sprite:
    rgb: np.ndarray  #: (h, w, 3) uint8
    alpha: np.ndarray  #: (h, w, 1) uint16, 0..256


def sprite(kind: str, size: int, color: RGB, accent: RGB, phase: int = 0) -> Sprite:
    """A subject drawn with Pillow at 3x and scaled down, so its edges are smooth."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _drawings[kind](ImageDraw.Draw(image), big, color, accent, phase)
    if kind in ("sun", "moon"):
        glow = image.filter(ImageFilter.GaussianBlur(big / 14))
        image = Image.alpha_composite(glow, image)
    small = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))
    alpha = small[:, :, 3:4].astype(np.uint16)
    return Sprite(np.ascontiguousarray(small[:, :, :3]), alpha + (alpha > 0))


def _melon(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.pieslice((s * 0.05, -s * 0.35, s * 0.95, s * 0.85), 20, 160, fill=(40, 120, 30, 255))
    draw.pieslice((s * 0.1, -s * 0.3, s * 0.9, s * 0.78), 20, 160, fill=(225, 50, 60, 255))
    for k in range(7):
        x, y = s * (0.25 + 0.08 * k), s * (0.5 + 0.08 * np.sin(k))
        draw.ellipse((x, y, x + s * 0.03, y + s * 0.05), fill=(20, 20, 20, 255))


def _disc(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.ellipse((s * 0.2, s * 0.2, s * 0.8, s * 0.8), fill=(*color, 255))
    draw.ellipse((s * 0.32, s * 0.28, s * 0.45, s * 0.4), fill=(*mix(color, (255, 255, 255), 0.6), 255))


def _sun(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.ellipse((s * 0.18, s * 0.18, s * 0.82, s * 0.82), fill=(*mix(color, (255, 230, 120), 0.6), 255))


def _moon(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.ellipse((s * 0.2, s * 0.2, s * 0.8, s * 0.8), fill=(235, 235, 220, 255))
    for x, y, r in ((0.4, 0.38, 0.07), (0.58, 0.55, 0.05), (0.45, 0.62, 0.04)):
        draw.ellipse((s * (x - r), s * (y - r), s * (x + r), s * (y + r)), fill=(200, 200, 190, 255))


def _bird(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    wing = 0.25 if phase % 2 else 0.7
    points = [(s * 0.1, s * wing), (s * 0.5, s * 0.5), (s * 0.9, s * wing), (s * 0.5, s * 0.6)]
    draw.polygon(points, fill=(*mix(color, (0, 0, 0), 0.5), 255))


def _car(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.rounded_rectangle((s * 0.05, s * 0.45, s * 0.95, s * 0.72), radius=s * 0.06, fill=(*color, 255))
    draw.rounded_rectangle((s * 0.25, s * 0.3, s * 0.72, s * 0.5), radius=s * 0.05, fill=(*color, 255))
    draw.rectangle((s * 0.3, s * 0.34, s * 0.66, s * 0.46), fill=(180, 220, 240, 255))
    for x in (0.25, 0.72):
        draw.ellipse((s * (x - 0.1), s * 0.62, s * (x + 0.1), s * 0.82), fill=(25, 25, 25, 255))
    draw.ellipse((s * 0.86, s * 0.5, s * 0.93, s * 0.57), fill=(*accent, 255))


def _fish(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.ellipse((s * 0.25, s * 0.35, s * 0.85, s * 0.65), fill=(*color, 255))
    tail = 0.05 if phase % 2 else 0.0
    draw.polygon([(s * 0.3, s * 0.5), (s * 0.08, s * (0.3 + tail)), (s * 0.08, s * (0.7 - tail))], fill=(*accent, 255))
    draw.ellipse((s * 0.7, s * 0.44, s * 0.75, s * 0.49), fill=(15, 15, 15, 255))


def _bubble(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    draw.ellipse(
        (s * 0.15, s * 0.15, s * 0.85, s * 0.85), fill=(*color, 90), outline=(255, 255, 255, 230), width=s // 30
    )
    draw.ellipse((s * 0.3, s * 0.28, s * 0.42, s * 0.38), fill=(255, 255, 255, 220))


def _cat(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    fill = (*color, 255)
    _legs(draw, s, mix(color, (0, 0, 0), 0.3), phase)
    draw.ellipse((s * 0.2, s * 0.5, s * 0.72, s * 0.78), fill=fill)
    tail = 0.2 if phase % 2 else 0.3
    draw.line((s * 0.24, s * 0.58, s * 0.08, s * tail), fill=fill, width=max(1, s // 16))
    draw.ellipse((s * 0.6, s * 0.34, s * 0.86, s * 0.6), fill=fill)
    for x in (0.62, 0.76):
        draw.polygon([(s * x, s * 0.42), (s * (x + 0.04), s * 0.26), (s * (x + 0.09), s * 0.4)], fill=fill)
    draw.ellipse((s * 0.76, s * 0.44, s * 0.8, s * 0.48), fill=(15, 15, 15, 255))


def _dog(draw: ImageDraw.ImageDraw, s: int, color: RGB, accent: RGB, phase: int) -> None:
    fill = (*color, 255)
    _legs(draw, s, mix(color, (0, 0, 0), 0.3), phase)
    draw.rounded_rectangle((s * 0.16, s * 0.48, s * 0.72, s * 0.76), radius=s * 0.12, fill=fill)
    tail = 0.3 if phase % 2 else 0.4
    draw.line((s * 0.2, s * 0.54, s * 0.06, s * tail), fill=fill, width=max(1, s // 14))
    draw.ellipse((s * 0.6, s * 0.3, s * 0.9, s * 0.58), fill=fill)
    draw.ellipse((s * 0.8, s * 0.44, s * 0.96, s * 0.56), fill=(*mix(color, (255, 255, 255), 0.4), 255))
    draw.ellipse((s * 0.58, s * 0.32, s * 0.7, s * 0.56), fill=(*mix(color, (0, 0, 0), 0.45), 255))
    draw.ellipse((s * 0.76, s * 0.38, s * 0.8, s * 0.42), fill=(15, 15, 15, 255))


def _legs(draw: ImageDraw.ImageDraw, s: int, color: RGB, phase: int) -> None:
    stride = 0.04 if phase % 2 else -0.04
    for x, sign in ((0.28, 1), (0.36, -1), (0.56, 1), (0.64, -1)):
        foot = x + sign * stride
        draw.line((s * x, s * 0.66, s * foot, s * 0.9), fill=(*color, 255), width=max(1, s // 18))


_drawings = {
    "melon": _melon,
    "ball": _disc,
    "sun": _sun,
    "moon": _moon,
    "bird": _bird,
    "car": _car,
    "fish": _fish,
    "bubble": _bubble,
    "cat": _cat,
    "dog": _dog,
}


def blend(frame: np.ndarray, layer: Sprite, x: int, y: int, opacity: int = 256) -> None:
    """Alpha-blend `layer` onto `frame` with its top-left corner at (x, y), clipped to the frame."""
    height, width = frame.shape[:2]
    h, w = layer.rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x0 >= x1 or y0 >= y1:
        return
    src = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    alpha = layer.alpha[src] if opacity >= 256 else (layer.alpha[src] * opacity) >> 8
    region = frame[y0:y1, x0:x1]
    mixed = (layer.rgb[src].astype(np.uint16) * alpha + region.astype(np.uint16) * (256 - alpha)) >> 8
    region[...] = mixed.astype(np.uint8)


@dataclass(frozen=True)
class Particles:
    """Weather: points that fall or drift and wrap around the frame, drawn as short streaks or dots."""

    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    color: RGB
    length: int  #: rows each particle covers (a streak for rain)
    dot: int  #: columns each particle covers
    twinkle: bool


def particles(kind: str, width: int, height: int, color: RGB, rng: np.random.Generator) -> Particles:
    count = {"rain": 500, "snow": 300, "petals": 160, "sparkles": 220, "leaves": 120}[kind]
    speed = {"rain": 1.6, "snow": 0.12, "petals": 0.15, "sparkles": 0.0, "leaves": 0.2}[kind]
    size = max(2, width // {"rain": 400, "snow": 180, "petals": 110, "sparkles": 260, "leaves": 100}[kind])
    shade = {"rain": (200, 210, 230), "snow": (250, 250, 250), "sparkles": (255, 240, 190)}.get(kind, color)
    length = height // 30 if kind == "rain" else size
    return Particles(
        x=rng.uniform(0, width, count),
        y=rng.uniform(0, height, count),
        vx=rng.uniform(-0.05, 0.05, count) * width,
        vy=rng.uniform(0.6, 1.0, count) * speed * height,
        color=shade,
        length=max(2, length),
        dot=max(1, width // 500) if kind == "rain" else size,
        twinkle=kind == "sparkles",
    )


def draw_particles(frame: np.ndarray, p: Particles, seconds: float, share: float = 1.0) -> None:
    """Draw the particles where they are at `seconds`; only the first `share` of them, so weather can set in."""
    height, width = frame.shape[:2]
    count = len(p.x) if share >= 1 else round(len(p.x) * share)
    xs = ((p.x[:count] + p.vx[:count] * seconds) % width).astype(np.intp)
    ys = ((p.y[:count] + p.vy[:count] * seconds) % height).astype(np.intp)
    if p.twinkle:
        on = np.sin(seconds * 6.0 + p.x[:count] * 0.37) > 0.2
        xs, ys = xs[on], ys[on]
    for dy in range(p.length):
        for dx in range(p.dot):
            frame[np.minimum(ys + dy, height - 1), np.minimum(xs + dx, width - 1)] = p.color
