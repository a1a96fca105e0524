"""How a request's length is met: the prompt split into shots, each short enough for one model run.

Open video models make about five seconds per run. A 15-second video is then three shots, each with
its own prompt (the prompt's clauses, in order) and seed, joined by cuts or continued from the last
frame of the shot before (the catalog's `shots` option).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from reelgate.backends.procedural.script import clauses


@dataclass(frozen=True)
class Shot:
    index: int
    prompt: str
    start: int  #: first output frame
    end: int  #: the output frame after its last
    frames: int  #: frames the model generates for it (its shape rule applied)
    seed: int

    @property
    def length(self) -> int:
        return self.end - self.start


def frames_to_generate(output_frames: int, fps: int, native_fps: int, frame_step: int) -> int:
    """Model frames that cover `output_frames` at `fps`, rounded up to `frame_step * k + 1`.

    >>> frames_to_generate(120, 24, 16, 4)   # 5 s at 24 fps from a 16 fps model
    81
    """
    needed = (output_frames - 1) * native_fps // fps + 1
    return frame_step * max(1, math.ceil((needed - 1) / frame_step)) + 1


def plan(
    prompt: str,
    seed: int,
    *,
    seconds: int,
    fps: int,
    native_fps: int,
    max_frames: int,
    frame_step: int,
) -> list[Shot]:
    """The fewest shots whose runs fit in `max_frames`, splitting the output frames evenly."""
    total = seconds * fps
    count = 1
    while count < total and frames_to_generate(math.ceil(total / count), fps, native_fps, frame_step) > max_frames:
        count += 1
    bounds = [round(i * total / count) for i in range(count + 1)]
    prompts = shot_prompts(prompt, count)
    return [
        Shot(
            index=i,
            prompt=prompts[i],
            start=bounds[i],
            end=bounds[i + 1],
            frames=frames_to_generate(bounds[i + 1] - bounds[i], fps, native_fps, frame_step),
            seed=(seed + 1_000_003 * i) % 2**32,
        )
        for i in range(count)
    ]


def shot_prompts(prompt: str, count: int) -> list[str]:
    """`count` prompts from the prompt's clauses, in order: grouped when there are more clauses than
    shots, each held over several shots when there are fewer.

    >>> shot_prompts("a street at dusk, a boy eats watermelon, then it rains", 2)
    ['a street at dusk, a boy eats watermelon', 'it rains']
    >>> shot_prompts("中国街头吃西瓜", 2)
    ['中国街头吃西瓜', '中国街头吃西瓜']
    """
    parts = clauses(prompt)
    if len(parts) <= count:
        return [parts[i * len(parts) // count] for i in range(count)]
    joiner = "，" if any(not ch.isascii() for ch in prompt) else ", "
    edges = np.linspace(0, len(parts), count + 1).round().astype(int)
    return [joiner.join(parts[a:b]) for a, b in itertools.pairwise(edges)]
