"""From prompt and seed to a storyboard: the shots, where they cut, and what each one shows.

Everything here is decided by a random generator seeded from the prompt and the seed, so the same
request always yields the same film, and different prompts yield different ones.
"""

from __future__ import annotations

import colorsys
import hashlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from reelgate.backends.procedural.lexicon import RGB, Meaning, meanings

#: Clause boundaries: punctuation (Chinese and Western), line breaks and the words for "then".
_CLAUSES = re.compile(r"[，,。．.;；！!？?、\n]+|然后|接着|随后|\band then\b|\bthen\b", re.IGNORECASE)
MIN_SHOTS, MAX_SHOTS = 3, 8
MIN_SHOT_SECONDS = 1.5
SCENERIES = ("hills", "mountains", "city", "forest", "waves", "desert")
SUBJECTS = ("ball", "bubble", "bird", "sun")
FRAMINGS = ("wide", "close", "low")
PAN_DIRECTIONS = ((1.0, 0.0), (-1.0, 0.0), (0.7, 0.7), (-0.7, 0.7), (0.0, 1.0), (0.7, -0.7))


@dataclass(frozen=True)
class Shot:
    index: int
    caption: str
    start: int  #: first frame of the shot
    end: int  #: the frame after its last
    palette: tuple[RGB, ...]  #: sky top, sky bottom, land, subject, accent
    scenery: str
    subject: str
    weather: str | None
    night: bool
    framing: str
    pan: tuple[float, float]  #: direction of the camera's move
    seed: int
    variant: int = 0  #: when not 0, the moving subjects are drawn from this instead of `seed`

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Storyboard:
    shots: tuple[Shot, ...]
    frames: int
    fps: int
    tempo: float  #: beats per minute of the soundtrack's pulse
    root_hz: float  #: the soundtrack's key

    @property
    def cuts(self) -> list[int]:
        """Frames where a new shot starts, the first frame excluded."""
        return [shot.start for shot in self.shots[1:]]


def seed_for(prompt: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def clauses(prompt: str) -> list[str]:
    """The prompt's clauses, in order.

    >>> clauses("中国街头，一个男孩吃西瓜。然后下起了雨")
    ['中国街头', '一个男孩吃西瓜', '下起了雨']
    """
    parts = (part.strip(" \t\"'“”‘’()（）[]【】") for part in _CLAUSES.split(prompt))
    return [part for part in parts if part] or [prompt.strip()]


def plan(prompt: str, seed: int, seconds: int, fps: int) -> Storyboard:
    rng = np.random.default_rng(seed_for(prompt, seed))
    frames = seconds * fps
    captions = _shot_captions(clauses(prompt), _shot_count(len(clauses(prompt)), seconds))
    bounds = _cut_points(len(captions), frames, rng)
    overall = meanings(prompt)
    shots = tuple(
        _shot(index, caption, bounds[index], bounds[index + 1], overall, rng) for index, caption in enumerate(captions)
    )
    hue = _hue(shots[0].palette[3])
    return Storyboard(
        shots=shots,
        frames=frames,
        fps=fps,
        tempo=float(rng.integers(84, 128)),
        root_hz=110.0 * 2 ** (round(hue * 12) / 12),
    )


def _shot_count(clause_count: int, seconds: int) -> int:
    most = max(1, min(MAX_SHOTS, int(seconds / MIN_SHOT_SECONDS)))
    return min(most, max(MIN_SHOTS, clause_count))


def _shot_captions(parts: list[str], count: int) -> list[str]:
    """`count` captions: clauses grouped when there are too many, repeated when too few."""
    if len(parts) <= count:
        return [parts[i % len(parts)] for i in range(count)]
    edges = np.linspace(0, len(parts), count + 1).round().astype(int)
    joiner = "，" if any(not ch.isascii() for ch in "".join(parts)) else ", "
    return [joiner.join(parts[a:b]) for a, b in itertools.pairwise(edges)]


def _cut_points(count: int, frames: int, rng: np.random.Generator) -> list[int]:
    """Shot boundaries: even lengths, each nudged by up to a fifth, whole frames, none empty."""
    weights = 1.0 + rng.uniform(-0.2, 0.2, count)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * frames
    points = [round(edge) for edge in edges]
    points[-1] = frames
    for i in range(1, count + 1):
        points[i] = max(points[i], points[i - 1] + 1)
    return points


def _shot(index: int, caption: str, start: int, end: int, overall: list[Meaning], rng: np.random.Generator) -> Shot:
    own = meanings(caption)
    found = own + [m for m in overall if m not in own]
    return Shot(
        index=index,
        caption=caption,
        start=start,
        end=end,
        palette=_palette(found, rng),
        scenery=_first(m.scenery for m in found) or SCENERIES[int(rng.integers(len(SCENERIES)))],
        subject=_first(m.subject for m in found) or SUBJECTS[int(rng.integers(len(SUBJECTS)))],
        weather=_first(m.weather for m in own) if own else _first(m.weather for m in overall),
        night=any(m.night for m in found),
        framing=FRAMINGS[(index + int(rng.integers(len(FRAMINGS)))) % len(FRAMINGS)] if index else "wide",
        pan=PAN_DIRECTIONS[int(rng.integers(len(PAN_DIRECTIONS)))],
        seed=int(rng.integers(2**31)),
    )


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value), None)


def _palette(found: list[Meaning], rng: np.random.Generator) -> tuple[RGB, ...]:
    """Five colours: the words' colours in order of appearance, then harmonies of a seeded hue."""
    colors: list[RGB] = []
    for meaning in found:
        colors += [c for c in meaning.colors if c not in colors]
    base = _hue(colors[0]) if colors else float(rng.uniform())
    offsets = (0.5, 0.08, 0.33, 0.66, 0.92)
    while len(colors) < 5:
        hue = (base + offsets[len(colors)] + rng.uniform(-0.03, 0.03)) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, float(rng.uniform(0.45, 0.8)), float(rng.uniform(0.6, 0.95)))
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return tuple(colors[:5])


def _hue(color: RGB) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in color))[0]
