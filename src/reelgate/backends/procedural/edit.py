"""An edit of a video's pixels: its own frames, in its own timing, re-painted as an instruction says.

For a source whose storyboard is unknown (an uploaded file, or a video made from more than a prompt),
the film is the source itself, frame for frame at the output's rate, each frame cover-fitted to the
output size as it is decoded:

    source frame ──grade (brightness onto the shot's palette)──> ──Overlay (subjects, weather, caption)──> frame

The shots are the instruction's own storyboard (`plan`, with `remix`'s `Changes` applied, so "at night",
"make it purple" or "下雪" read as they do in a remix); each shot's palette grades the source's frames
while it lasts, and its subjects and weather move in front of them. Shapes, motion and cuts stay the
source's. The sound is the source's own (resampled to 48 kHz stereo) where it has any, else the
instruction's soundtrack.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.layers import mix
from reelgate.backends.procedural.lexicon import RGB
from reelgate.backends.procedural.remix import read_changes
from reelgate.backends.procedural.scene import Overlay
from reelgate.backends.procedural.script import Shot, Storyboard, plan
from reelgate.media.source import SourceFrames, fitted_sound

#: How much of a re-painted frame is the graded colour rather than the source's own (texture stays visible).
GRADE = 0.85
_BLACK, _WHITE = (0, 0, 0), (255, 255, 255)


def repaint_board(instruction: str, seed: int, seconds: int, fps: int) -> Storyboard:
    """The instruction's storyboard, with what it asks to change (time of day, weather...) applied."""
    board = plan(instruction, seed, seconds, fps)
    changes = read_changes(instruction)
    return replace(board, shots=tuple(changes.apply(shot) for shot in board.shots))


def ramp(palette: tuple[RGB, ...], night: bool) -> np.ndarray:
    """A 256-step colour ramp (256, 3) from the palette's darkest colour to its lightest, for grading by
    brightness: black and white at the ends keep the source's contrast.

    >>> ramp(((200, 40, 40), (250, 200, 200), (60, 10, 10), (0, 0, 0), (0, 0, 0)), False).shape
    (256, 3)
    """
    top, bottom, land = palette[:3]
    stops = sorted((land, bottom, top), key=_brightness)
    if night:
        stops = [mix(color, (10, 10, 40), 0.5) for color in stops]
    colors = np.array([mix(stops[0], _BLACK, 0.6), *stops, mix(stops[-1], _WHITE, 0.5)], np.float32)
    positions = np.linspace(0, 255, len(colors))
    levels = np.arange(256)
    return np.stack([np.interp(levels, positions, colors[:, c]) for c in range(3)], axis=1).astype(np.float32)


def grade(frame: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """`frame` (h, w, 3 uint8) recoloured: each pixel's brightness looked up on `colors` (see `ramp`)."""
    luma = (frame @ np.array([77, 150, 29], np.uint16)) >> 8  # ITU-R BT.601 weights out of 256
    graded = colors[luma] * GRADE + frame.astype(np.float32) * (1 - GRADE)
    return graded.astype(np.uint8)


class Repaint:
    """The source video as the film's backdrop: `painter(shot)` paints a shot over its frames, and
    `sound(planned)` is the source's soundtrack in place of the planned one."""

    def __init__(self, video: Path, width: int, height: int, fps: int, fonts: FontFinder) -> None:
        self.video, self.width, self.height, self.fps, self.fonts = video, width, height, fps, fonts
        self.frames = SourceFrames(video, fps, width, height)

    def painter(self, shot: Shot) -> RepaintPainter:
        return RepaintPainter(self, shot)

    def sound(self, planned: np.ndarray) -> np.ndarray:
        """The source's sound at the planned soundtrack's length; the planned one when the source has none."""
        own = fitted_sound(self.video, len(planned))
        return planned if own is None else own


class RepaintPainter:
    """One shot of a re-painted film (same `paint(i)` as `ShotPainter`)."""

    def __init__(self, source: Repaint, shot: Shot) -> None:
        self.source, self.shot = source, shot
        self.colors = ramp(shot.palette, shot.night)
        self.overlay = Overlay(shot, source.width, source.height, source.fonts, np.random.default_rng(shot.seed))

    def paint(self, i: int) -> np.ndarray:
        frame = grade(self.source.frames.frame(self.shot.start + i), self.colors)
        self.overlay.draw(frame, i / self.source.fps)
        return frame


def _brightness(color: RGB) -> float:
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
