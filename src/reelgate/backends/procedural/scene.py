"""Paints the frames of one shot: a camera panning over sky and parallax scenery, moving subjects,
weather, the caption fading in, and a flash of light on the cut that opens the shot."""

from __future__ import annotations

import math

import numpy as np

from reelgate.backends.procedural import layers
from reelgate.backends.procedural.captions import FontFinder, render_caption
from reelgate.backends.procedural.layers import RGB, Sprite, mix
from reelgate.backends.procedural.script import Shot

FLASH = (150, 80, 35)  #: how much light the first frames after a cut get, out of 256
CAPTION_FADE_SECONDS = 0.4


class ShotPainter:
    """Everything a shot needs is made in `__init__`; `paint(i)` then composes frame `i` of the shot."""

    def __init__(self, shot: Shot, width: int, height: int, fps: int, fonts: FontFinder) -> None:
        self.shot, self.width, self.height, self.fps = shot, width, height, fps
        rng = np.random.default_rng(shot.seed)
        top, bottom, land, _, accent = shot.palette
        if shot.night:
            top, bottom = mix(top, (5, 5, 20), 0.75), mix(bottom, (10, 10, 40), 0.5)
        else:
            top, bottom = mix(top, (255, 255, 255), 0.15), mix(bottom, (255, 255, 255), 0.45)
        self.travel = (round(width * 0.12), round(height * 0.06))
        self.sky = layers.sky(height + self.travel[1], width + self.travel[0], top, bottom, rng)
        horizon = round(height * (0.58 if shot.framing != "low" else 0.72))
        far_color, near_color = mix(land, bottom, 0.5), mix(land, (0, 0, 0), 0.25)
        self.far = layers.scenery(shot.scenery, width + width // 3, height - horizon, far_color, accent, horizon, rng)
        near_top = horizon + (height - horizon) // 3
        self.near = layers.scenery(shot.scenery, width * 2, height - near_top, near_color, accent, near_top, rng)
        self.overlay = Overlay(shot, width, height, fonts, rng)

    def paint(self, i: int) -> np.ndarray:
        t = i / max(1, self.shot.frames - 1)  # 0..1 through the shot
        seconds = i / self.fps
        ease = t * t * (3 - 2 * t)
        dx, dy = self.shot.pan
        x = round((0.5 + 0.5 * dx * (2 * ease - 1)) * self.travel[0])
        y = round((0.5 + 0.5 * dy * (2 * ease - 1)) * self.travel[1])
        frame = self.sky[y : y + self.height, x : x + self.width].copy()
        self._band(frame, self.far, ease * 0.3 * self.width / 3 * (1 if dx >= 0 else -1))
        self._band(frame, self.near, seconds * self.width * 0.06 + ease * self.width * 0.2 * dx)
        self.overlay.draw(frame, seconds)
        if self.shot.index and i < len(FLASH):
            frame += ((255 - frame).astype(np.uint16) * FLASH[i] >> 8).astype(np.uint8)
        return frame

    def _band(self, frame: np.ndarray, band: layers.Band, shift: float) -> None:
        span = band.rgb.shape[1] - self.width
        band.paste(frame, round(shift) % span if span > 0 else 0, self.width)


class Overlay:
    """What moves in front of a shot's backdrop: its subjects, its weather and its caption."""

    def __init__(self, shot: Shot, width: int, height: int, fonts: FontFinder, rng: np.random.Generator) -> None:
        self.width, self.height = width, height
        _, _, _, subject, accent = shot.palette
        movers_rng = np.random.default_rng((shot.seed, shot.variant)) if shot.variant else rng
        self.subjects = _subjects(shot, width, height, subject, accent, movers_rng)
        self.weather = layers.particles(shot.weather, width, height, accent, rng) if shot.weather else None
        self.caption = _caption(shot.caption, width, height, fonts)

    def draw(self, frame: np.ndarray, seconds: float, fade_in: float = 0.0) -> None:
        """Draw everything at `seconds` into the shot; with `fade_in`, subjects and weather appear over that
        many seconds (nothing at 0 s) and the caption with them."""
        presence = min(1.0, seconds / fade_in) if fade_in else 1.0
        if presence > 0:
            for mover in self.subjects:
                mover.draw(frame, seconds, round(256 * presence))
            if self.weather is not None:
                layers.draw_particles(frame, self.weather, seconds, presence)
        if self.caption is not None:
            h, w = self.caption.rgb.shape[:2]
            opacity = round(256 * min(1.0, seconds / max(fade_in, CAPTION_FADE_SECONDS)))
            layers.blend(frame, self.caption, (self.width - w) // 2, round(self.height * 0.86) - h, opacity)


class Mover:
    """A subject sprite on a path: drifting across, bobbing, or bouncing; two poses alternate for life."""

    def __init__(self, poses: list[Sprite], x: float, y: float, vx: float, bob: float, rate: float, phase: float):
        self.poses, self.x, self.y, self.vx, self.bob, self.rate, self.phase = poses, x, y, vx, bob, rate, phase

    def draw(self, frame: np.ndarray, seconds: float, opacity: int = 256) -> None:
        width = frame.shape[1]
        size = self.poses[0].rgb.shape[0]
        x = (self.x + self.vx * seconds) % (width + size) - size
        y = self.y + self.bob * math.sin(2 * math.pi * self.rate * seconds + self.phase)
        pose = self.poses[int(seconds * 4 + self.phase) % len(self.poses)]
        layers.blend(frame, pose, round(x), round(y), opacity)


def _subjects(shot: Shot, width: int, height: int, color: RGB, accent: RGB, rng: np.random.Generator) -> list[Mover]:
    kind = shot.subject
    close = shot.framing == "close"
    count = 1 if close or kind in ("sun", "moon") else int(rng.integers(2, 5))
    movers = []
    for k in range(count):
        size = round(min(width, height) * (0.55 if close else rng.uniform(0.16, 0.3)))
        poses = [layers.sprite(kind, size, color, accent, phase) for phase in (0, 1)]
        in_sky = kind in ("sun", "moon", "bird", "bubble")
        y = height * (rng.uniform(0.12, 0.35) if in_sky else rng.uniform(0.55, 0.7)) - size / 2
        speed = 0.0 if kind in ("sun", "moon") else width * rng.uniform(0.05, 0.18) * (1 if k % 2 == 0 else -1)
        movers.append(
            Mover(
                poses,
                x=rng.uniform(0, width) if not close else (width - size) / 2 + size,
                y=y,
                vx=speed if not close else width * 0.03,
                bob=height * (0.02 if kind in ("sun", "moon") else rng.uniform(0.02, 0.06)),
                rate=rng.uniform(0.3, 1.2),
                phase=rng.uniform(0, 2 * math.pi),
            )
        )
    return movers


def _caption(text: str, width: int, height: int, fonts: FontFinder) -> Sprite | None:
    size = max(10, round(min(width, height) * 0.06))
    font = fonts.find(text, size)
    if font is None:
        return None
    rgba = render_caption(text, font, round(width * 0.9))
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    return Sprite(np.ascontiguousarray(rgba[:, :, :3]), alpha + (alpha > 0))
