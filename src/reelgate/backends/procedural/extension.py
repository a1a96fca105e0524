"""An extension: a completed video, then its storyboard going on as a new prompt says.

The source's shots are planned again from its prompt and seed (for the palette, subject, tempo and key
the continuation keeps); shots planned from the new prompt follow them, in the last source shot's palette
and with its subject. The source's own frames and sound are copied (decoded) for the first part, and the
soundtrack, planned over the whole storyboard, carries on across the join.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from reelgate.backends.base import ExtendSource
from reelgate.backends.procedural.script import Storyboard, plan
from reelgate.media.encode import SAMPLE_RATE
from reelgate.media.source import fitted_sound


def extended(source: ExtendSource, prompt: str, seed: int, seconds: int, fps: int) -> Storyboard:
    """The source's storyboard with `seconds` more planned from `prompt`, as one storyboard.

    >>> board = extended(ExtendSource("a red ball on the hills", 7, 4, Path("-")), "it rolls away", 1, 8, 8)
    >>> board.frames, board.shots[-1].end, board.shots[-1].subject == board.shots[0].subject
    (96, 96, True)
    """
    before = plan(source.prompt, source.seed, source.seconds, fps)
    after = plan(prompt, seed, seconds, fps)
    last, offset, count = before.shots[-1], before.frames, len(before.shots)
    more = tuple(
        replace(
            shot,
            index=count + shot.index,
            start=offset + shot.start,
            end=offset + shot.end,
            palette=last.palette,
            subject=last.subject,
        )
        for shot in after.shots
    )
    return replace(before, shots=before.shots + more, frames=before.frames + after.frames)


def with_source_sound(audio: np.ndarray, video: Path, frames: int, fps: int) -> np.ndarray:
    """`audio` (samples x 2) with its first `frames` worth replaced by `video`'s own sound, if it has any."""
    join = min(frames * SAMPLE_RATE // fps, len(audio))
    own = fitted_sound(video, join)
    if own is None:  # no sound: the planned soundtrack plays throughout
        return audio
    out = audio.copy()
    out[:join] = own
    return out
