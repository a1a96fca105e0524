"""Reading a source video for an edit: its frames in another video's timing and size, and its sound.

Both backends that edit a video (procedural, diffusers) read the source through here: frames in order,
each scaled while it is converted to RGB (so a 4K frame is never copied whole), turned upright by its
display rotation and cover-fitted; the sound resampled to 48 kHz stereo. A frame or packet that cannot
be decoded ends the source there: the frames before it are the video.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from reelgate.inputs.video_probe import DEMUXER
from reelgate.media.encode import SAMPLE_RATE


class SourceFrames:
    """`frame(k)`: the source frame showing at k / `fps` seconds, at `width` x `height`.

    Read in order, as a film is made; asking for an earlier frame starts reading again.
    """

    def __init__(self, video: Path, fps: float, width: int, height: int) -> None:
        self.video, self.fps, self.width, self.height = video, fps, width, height
        self._frames: Iterator[np.ndarray] | None = None
        self._next = 0  #: the frame `_frames` yields next

    def frame(self, index: int) -> np.ndarray:
        if self._frames is None or index < self._next:
            self._frames = timed_frames(self.video, self.fps, self.width, self.height)
            self._next = 0
        for _ in range(index - self._next):
            next(self._frames)
        self._next = index + 1
        return next(self._frames)


def timed_frames(video: Path, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """Endless: for frame k, the source frame showing at k / `fps` (its last one once it ends), upright
    and cover-fitted to `width` x `height`."""
    with av.open(str(video), format=DEMUXER) as container:
        decoded = _decoded(container)
        shown, upcoming = None, next(decoded, None)
        if upcoming is None:
            raise ValueError(f"{video} has no video frame")
        fitted: np.ndarray | None = None
        for k in itertools.count():
            moment = k / fps + 1e-6
            while upcoming is not None and (upcoming.time or 0.0) <= moment:
                shown, fitted, upcoming = upcoming, None, next(decoded, None)
            if fitted is None:
                fitted = cover(shown or upcoming, width, height)  # type: ignore[arg-type]
            yield fitted


def _decoded(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(video=0)
    except av.FFmpegError:
        return


def cover(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """`frame` turned upright, scaled (while converted to RGB) to cover `width` x `height`, centre-cropped."""
    turns = (int(frame.rotation) % 360) // 90
    shown_w, shown_h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    scale = max(width / shown_w, height / shown_h)
    scaled_w, scaled_h = max(width, math.ceil(shown_w * scale)), max(height, math.ceil(shown_h * scale))
    coded = (scaled_h, scaled_w) if turns % 2 else (scaled_w, scaled_h)
    rgb = frame.to_ndarray(format="rgb24", width=coded[0], height=coded[1])
    if turns:
        rgb = np.rot90(rgb, turns)  # counter-clockwise, as FFmpeg's display rotation is
    left, top = (rgb.shape[1] - width) // 2, (rgb.shape[0] - height) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def source_sound(video: Path) -> np.ndarray | None:
    """The video's first audio stream as float32 stereo at 48 kHz, shape (n, 2); None without one."""
    with av.open(str(video), format=DEMUXER) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
        except av.FFmpegError:
            pass  # a damaged tail: the sound before it
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    if not chunks:
        return None
    return np.concatenate(chunks, axis=1).T.astype(np.float32)


def fitted_sound(video: Path, samples: int) -> np.ndarray | None:
    """`source_sound` cut or padded with silence to `samples`; None when the video has no sound."""
    sound = source_sound(video)
    if sound is None:
        return None
    out = np.zeros((samples, 2), np.float32)
    out[: min(samples, len(sound))] = sound[:samples]
    return out
