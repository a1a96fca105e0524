"""Joining MP4s end to end into one, cut at a length: a video made in parts (an extension after its
source, a relayed video chained from several upstream calls) plays as one file with one soundtrack.

Each part is decoded, scaled to the output size and resampled in time to the output frame rate (a
part's frame shows for as long as it did in the part); its sound is resampled to 48 kHz stereo, and a
part without sound is silent for its length. Nothing is kept in memory beyond one part's audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame
from reelgate.media.probe import probe


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


def frames_at_rate(video: Path, fps: int, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Exactly `count` RGB frames of `video` at `fps`: output frame k shows the frame on screen at k / fps."""
    given = 0
    shown: np.ndarray | None = None
    start: float | None = None
    with av.open(str(video)) as container:
        for decoded in container.decode(video=0):
            at = float(decoded.time or 0.0)
            start = at if start is None else start
            while shown is not None and given < count and given / fps < at - start - 1e-6:
                yield shown
                given += 1
            if given == count:
                return
            shown = decoded.to_ndarray(format="rgb24", width=width, height=height)
    while shown is not None and given < count:
        yield shown
        given += 1


def last_frame(video: Path) -> np.ndarray:
    """The last decodable frame of `video`, RGB at its own size."""
    frame: np.ndarray | None = None
    with av.open(str(video)) as container:
        for decoded in container.decode(video=0):
            frame = decoded.to_ndarray(format="rgb24")
    if frame is None:
        raise ValueError(f"{video} has no video frames")
    return frame


def _sound(video: Path, samples: int) -> np.ndarray:
    """`samples` of `video`'s sound as (samples, 2) float32 at 48 kHz; silence where it has none."""
    out = np.zeros((samples, 2), np.float32)
    chunks: list[np.ndarray] = []
    with av.open(str(video)) as container:
        if not container.streams.audio:
            return out
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(each.to_ndarray() for each in resampler.resample(frame))
        chunks.extend(each.to_ndarray() for each in resampler.resample(None))
    if chunks:
        planar = np.concatenate(chunks, axis=1)[:, :samples]
        out[: planar.shape[1]] = planar.T
    return out
