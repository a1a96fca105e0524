"""Remix: the parent's storyboard, changed only where the instruction's words say.

A remix plans the parent's prompt and seed again, so it keeps the parent's shots, cut points,
framings, camera moves, scenery, captions, palette and soundtrack. Then the instruction's words
(see `lexicon.py`) change what they name, in every shot:

    colour words   recolour the sky and tint the land      "把天空变成紫色", "make it purple"
    time words     day, dusk or night (the sun becomes      "夜晚", "黄昏", "at night", "白天"
                   the moon at night, stars come out)
    weather words  bring that weather                      "下雪", "rain", "加点花瓣"
    object words   swap the moving subject                 "换成小狗", "a cat instead"
    scenery words  swap the scenery                        "换成海边", "in the desert"

An instruction that changes none of these still makes a variant: the moving subjects are re-seeded
from the instruction, everything else stays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reelgate.backends.base import RemixSource
from reelgate.backends.procedural.layers import mix
from reelgate.backends.procedural.lexicon import NAVY, RGB, meanings
from reelgate.backends.procedural.script import Shot, Storyboard, plan, seed_for

#: Per time of day a remix asks for: the sky's top and bottom colours it moves toward, and how much the
#: land darkens. "day" only lifts shots that were night.
TIME_LIGHT: dict[str, tuple[RGB, RGB, float]] = {
    "day": ((110, 180, 235), (215, 232, 245), 0.0),
    "dusk": ((72, 52, 128), (250, 140, 60), 0.3),
    "night": (NAVY, (40, 40, 90), 0.45),
}


@dataclass(frozen=True)
class Changes:
    """What an instruction asks to change; None (or empty) where it leaves the parent alone."""

    colors: tuple[RGB, ...] = ()
    time: str | None = None  #: "day" | "dusk" | "night"
    weather: str | None = None
    subject: str | None = None
    subject_color: RGB | None = None
    scenery: str | None = None

    def apply(self, shot: Shot) -> Shot:
        night = shot.night if self.time is None else self.time == "night"
        return replace(
            shot,
            palette=self._palette(shot.palette, shot.night),
            scenery=self.scenery or shot.scenery,
            subject=_by_time(self.subject or shot.subject, night),
            weather=self._weather(shot.weather),
            night=night,
        )

    def _palette(self, palette: tuple[RGB, ...], was_night: bool) -> tuple[RGB, ...]:
        top, bottom, land, subject, accent = palette
        if self.colors:
            first, second = self.colors[0], self.colors[-1]
            top, bottom, land = first, mix(second, bottom, 0.25), mix(land, first, 0.4)
        if self.time and (self.time != "day" or was_night):
            sky, glow, shade = TIME_LIGHT[self.time]
            top, bottom, land = mix(top, sky, 0.6), mix(bottom, glow, 0.6), mix(land, (0, 0, 0), shade)
        return (top, bottom, land, self.subject_color or subject, accent)

    def _weather(self, weather: str | None) -> str | None:
        if self.weather:
            return self.weather
        if self.time == "night":
            return weather or "sparkles"  # stars
        if self.time == "day" and weather == "sparkles":
            return None
        return weather


def read_changes(instruction: str) -> Changes:
    """What `instruction` changes.

    >>> read_changes("换成小狗，下雪").subject, read_changes("换成小狗，下雪").weather
    ('dog', 'snow')
    """
    found = meanings(instruction)
    things = [m for m in found if not m.time]  # a time word's sun, moon or stars come with the time
    subject = next((m for m in things if m.subject), None)
    return Changes(
        colors=tuple(dict.fromkeys(color for m in found if m.only_colors for color in m.colors)),
        time=next((m.time for m in reversed(found) if m.time), None),  # "from day to night": the last one
        weather=next((m.weather for m in things if m.weather), None),
        subject=subject.subject if subject else None,
        subject_color=subject.colors[0] if subject and subject.colors else None,
        scenery=next((m.scenery for m in things if m.scenery), None),
    )


def remix(parent: RemixSource, instruction: str, seed: int, seconds: int, fps: int) -> Storyboard:
    """The parent's storyboard at this length, with `instruction` applied.

    >>> board = remix(RemixSource("a red ball on the hills", 7), "at night", 1, 6, 8)
    >>> board.cuts == plan("a red ball on the hills", 7, 6, 8).cuts, all(s.night for s in board.shots)
    (True, True)
    """
    board = plan(parent.prompt, parent.seed, seconds, fps)
    changes = read_changes(instruction)
    shots = tuple(changes.apply(shot) for shot in board.shots)
    if shots == board.shots:
        variant = seed_for(instruction, seed) % 2**31 | 1
        shots = tuple(replace(shot, variant=variant + shot.index) for shot in shots)
    return replace(board, shots=shots)


def _by_time(subject: str, night: bool) -> str:
    if night and subject == "sun":
        return "moon"
    if not night and subject == "moon":
        return "sun"
    return subject
