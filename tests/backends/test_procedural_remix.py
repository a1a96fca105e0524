"""A remix is its parent, changed where the instruction says: checked on the decoded videos."""

from __future__ import annotations

import colorsys
from pathlib import Path

import av
import numpy as np
import pytest

from reelgate.backends.base import Orientation, RemixSource, VideoSpec
from reelgate.backends.procedural import ProceduralBackend
from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.film import Film
from reelgate.backends.procedural.lexicon import GREEN, PURPLE
from reelgate.backends.procedural.remix import read_changes
from reelgate.backends.procedural.script import plan

PARENT = "中国街头吃西瓜，夕阳下的城市，然后下起了雨"
PARENT_SEED = 1
SKY = slice(0, 80)  #: the upper third of a 256-row frame


def _spec(prompt: str = PARENT, *, remix: bool = True, seed: int = 7) -> VideoSpec:
    parent = RemixSource(PARENT, PARENT_SEED) if remix else None
    return VideoSpec(prompt, Orientation.PORTRAIT, 6, 144, 256, 8, seed if remix else PARENT_SEED, "m", remix_of=parent)


def _parent() -> VideoSpec:
    return _spec(remix=False)


def _frames(spec: VideoSpec) -> np.ndarray:
    return np.stack(list(Film.of(spec, FontFinder()).frames())).astype(np.int16)


def _decoded(spec: VideoSpec, workdir: Path) -> np.ndarray:
    workdir.mkdir()
    video = ProceduralBackend().render(spec, workdir, lambda _: None).video
    with av.open(str(video)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.int16)


def _cuts(frames: np.ndarray) -> list[int]:
    """Frames that change at least three times as much as each of the two frames before them did."""
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: from frame i to i + 1
    return [i + 1 for i in range(2, len(steps)) if steps[i] > 3 * max(steps[i - 2], steps[i - 1])]


def _hue(frames: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(float(c) / 255 for c in frames.mean(axis=(0, 1, 2))))[0]


def _hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 1 - abs(a - b))


@pytest.mark.parametrize("instruction", ["夜晚", "make it livelier", "换成小狗，下雪"])
def test_remix_cuts_where_its_parent_cuts(tmp_path: Path, instruction: str) -> None:
    parent = _cuts(_decoded(_parent(), tmp_path / "parent"))
    assert parent == plan(PARENT, PARENT_SEED, 6, 8).cuts and len(parent) == 2
    assert _cuts(_decoded(_spec(instruction), tmp_path / "remix")) == parent


def test_remix_without_recognised_words_is_a_close_variant() -> None:
    parent, remix = _frames(_parent()), _frames(_spec("make it livelier"))
    unrelated = _frames(_spec("a green meadow with birds", remix=False))
    assert not np.array_equal(parent, remix)
    assert np.abs(parent - remix).mean() > 1  # visibly different ...
    colour = parent.mean(axis=(0, 1, 2))
    assert np.abs(remix.mean(axis=(0, 1, 2)) - colour).max() < 3  # ... in the same colours
    assert np.abs(unrelated.mean(axis=(0, 1, 2)) - colour).max() > 30


@pytest.mark.parametrize(("instruction", "colour"), [("把天空变成紫色", PURPLE), ("paint the sky green", GREEN)])
def test_colour_words_recolour_the_sky(instruction: str, colour: tuple[int, int, int]) -> None:
    target = colorsys.rgb_to_hsv(*(c / 255 for c in colour))[0]
    parent, remix = _frames(_parent())[:, SKY], _frames(_spec(instruction))[:, SKY]
    assert _hue_distance(_hue(remix), target) < 0.05 < _hue_distance(_hue(parent), target)


def test_purple_moves_the_palette_toward_purple() -> None:
    target = colorsys.rgb_to_hsv(*(c / 255 for c in PURPLE))[0]
    parent, remix = _frames(_parent()), _frames(_spec("make it purple"))
    assert _hue_distance(_hue(remix), target) < _hue_distance(_hue(parent), target) - 0.2


@pytest.mark.parametrize("instruction", ["夜晚", "at night"])
def test_night_darkens_the_film(instruction: str) -> None:
    parent, remix = _frames(_parent()), _frames(_spec(instruction))
    assert remix.mean() < 0.7 * parent.mean()
    assert remix[:, SKY].mean() < 0.5 * parent[:, SKY].mean()


def test_weather_and_object_words_change_every_shot() -> None:
    board = Film.of(_spec("换成小狗，下雪"), FontFinder()).board
    assert {shot.subject for shot in board.shots} == {"dog"} and {shot.weather for shot in board.shots} == {"snow"}
    cats = Film.of(_spec("a cat instead"), FontFinder()).board
    assert {shot.subject for shot in cats.shots} == {"cat"}
    assert np.abs(_frames(_parent()) - _frames(_spec("换成小狗，下雪"))).mean() > 3


def test_remix_keeps_the_parents_shots_captions_and_soundtrack() -> None:
    parent, remix = Film.of(_parent(), FontFinder()), Film.of(_spec("黄昏，下雨"), FontFinder())
    assert [s.caption for s in remix.board.shots] == [s.caption for s in parent.board.shots]
    assert [(s.scenery, s.framing, s.pan) for s in remix.board.shots] == [
        (s.scenery, s.framing, s.pan) for s in parent.board.shots
    ]
    assert (remix.board.tempo, remix.board.root_hz) == (parent.board.tempo, parent.board.root_hz)
    assert np.array_equal(remix.audio, parent.audio)


def test_a_remix_is_deterministic() -> None:
    assert np.array_equal(_frames(_spec("make it purple")), _frames(_spec("make it purple")))
    assert not np.array_equal(_frames(_spec("make it livelier")), _frames(_spec("make it calmer")))


@pytest.mark.parametrize(
    ("instruction", "time", "weather", "subject"),
    [
        ("夜晚", "night", None, None),
        ("变成黄昏", "dusk", None, None),
        ("白天，下雨", "day", "rain", None),
        ("a dog instead, with snow", None, "snow", "dog"),
        ("从白天到夜里", "night", None, None),
    ],
)
def test_instruction_words(instruction: str, time: str | None, weather: str | None, subject: str | None) -> None:
    changes = read_changes(instruction)
    assert (changes.time, changes.weather, changes.subject) == (time, weather, subject)
