"""Joining MP4s end to end into one, cut at a length: a video made in parts (an extension after its
source, a relayed video chained from several upstream calls) plays as one file with one soundtrack.

Each part is decoded, scaled to the output size and resampled in time to the output frame rate (a
part's frame shows for as long as it did in the part); its sound is resampled to 48 kHz stereo, and a
part without sound is silent for its length. Nothing is kept in memory beyond one part's audio. A part
may be a client's upload (the video an extension continues), so every part is decoded by a
`SourceReader` (`media/source.py`): in a child process, under a time limit and the upload caps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame
from reelgate.media.probe import probe
from reelgate.media.source import SourceFrames, fitted_sound


def join(
    parts: Sequence[Path],
    out: Path,
    *,
    width: int,
    height: int,
    fps: int,
    seconds: float | None = None,
    preset: str = "veryfast",
) -> Path:
    """`parts` one after another as one MP4 at `width` x `height` and `fps`, cut after `seconds` if given."""
    limit = round(seconds * fps) if seconds is not None else None
    written = 0
    with Mp4Writer(out, width, height, fps, preset=preset) as writer:
        for part in parts:
            count = round(probe(part).duration * fps)
            if limit is not None:
                count = min(count, limit - written)
            audio = _sound(part, count * SAMPLE_RATE // fps)
            for index, frame in enumerate(frames_at_rate(part, fps, width, height, count)):
                writer.write(frame, audio[samples_for_frame(index, fps)])
            written += count
    return out


def frames_at_rate(video: Path, fps: float, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Exactly `count` RGB frames of `video` at `fps`, cover-fitted to `width` x `height`: output frame k
    shows the frame on screen at k / fps (the last one held once the video ends)."""
    source = SourceFrames(video, fps, width, height)
    try:
        for index in range(count):
            yield source.frame(index)
    finally:
        source.close()


def last_frame(video: Path) -> np.ndarray:
    """The last decodable frame of `video`, RGB at its own size."""
    info = probe(video)
    # One frame a little longer than the whole video: the second one shown is its last.
    source = SourceFrames(video, 1 / (info.duration + 1), info.width, info.height)
    try:
        return source.frame(1)
    finally:
        source.close()


def _sound(video: Path, samples: int) -> np.ndarray:
    """`samples` of `video`'s sound as (samples, 2) float32 at 48 kHz; silence where it has none."""
    sound = fitted_sound(video, samples)
    return np.zeros((samples, 2), np.float32) if sound is None else sound
