"""What a media file holds: its streams, sizes and durations, read with PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class MediaInfo:
    duration: float  #: the container's duration in seconds
    width: int
    height: int
    fps: float
    frames: int  #: the video stream's frame count as the container records it (0 when unknown)
    video_codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    audio_duration: float | None = None  #: seconds of audio


def probe(path: Path | str) -> MediaInfo:
    """Open `path` and describe it; raises `av.FFmpegError` (or ValueError) for a file that is not a video."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = container.duration / av.time_base if container.duration is not None else 0.0
        return MediaInfo(
            duration=float(duration),
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=float(video.average_rate or 0),
            frames=video.frames,
            video_codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt or "",
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
            audio_duration=_stream_seconds(audio) if audio else None,
        )


def _stream_seconds(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * Fraction(stream.time_base))


def read_frame(path: Path | str, index: int) -> np.ndarray:
    """Decode video frame `index` (0-based) as an RGB array of shape (height, width, 3)."""
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {index}")


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode the whole first audio stream as float32 samples of shape (channels, n), and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    return np.concatenate(chunks, axis=1).astype(np.float32), rate
