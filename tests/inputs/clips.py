"""Small test videos: a clip whose colour changes frame by frame, and hostile variants of it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame


def make_clip(
    path: Path, seconds: float = 2.0, width: int = 64, height: int = 48, fps: int = 8, *, audio: bool = True
) -> Path:
    """An MP4 whose red rises from 0 to 255 over its frames (green 100), with a quiet 440 Hz tone."""
    frames = round(seconds * fps)
    with Mp4Writer(path, width, height, fps, preset="ultrafast") as writer:
        for index in range(frames):
            frame = np.zeros((height, width, 3), np.uint8)
            frame[..., 0] = index * 255 // max(1, frames - 1)
            frame[..., 1] = 100
            writer.write(frame, _tone(samples_for_frame(index, fps)) if audio else None)
    return path


def make_mov(path: Path, seconds: float = 1.0, width: int = 64, height: int = 48, fps: int = 8) -> Path:
    """A QuickTime .mov (video only) in the same colours."""
    with av.open(str(path), mode="w", format="mov") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            frame = np.full((height, width, 3), (index * 20 % 256, 100, 0), np.uint8)
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return path


def make_giant_frames(path: Path, seconds: int = 1, fps: int = 8, giant: tuple[int, int] = (4096, 4096)) -> Path:
    """An MJPEG .mov of 64x48 frames but for its 2nd to 6th, which are `giant`: each JPEG states its own
    size, so admission's probe (the first frame, one near the end) sees a small video, and only a full
    decode meets the giant frames."""
    with av.open(str(path), mode="w", format="mov") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(seconds * fps):
            width, height = giant if 1 <= index <= 5 else (64, 48)
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
            encoder.time_base = Fraction(1, fps)
            image = av.VideoFrame.from_ndarray(np.full((height, width, 3), 120, np.uint8), format="rgb24")
            frame = image.reformat(format="yuvj420p")
            frame.pts = index
            for packet in encoder.encode(frame):
                packet.stream, packet.pts, packet.dts, packet.time_base = stream, index, index, Fraction(1, fps)
                container.mux(packet)
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        samples = _tone(slice(0, int(seconds * SAMPLE_RATE)))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.T), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def zero_durations(data: bytes) -> bytes:
    """The MP4 with the durations of its movie, track and media headers set to 0."""
    patched = bytearray(data)
    for box, skip in ((b"mvhd", 4), (b"tkhd", 8), (b"mdhd", 4)):
        at = patched.find(box)
        while at > 0:
            version = patched[at + 4]
            width = 4 if version == 0 else 8
            offset = at + 8 + 2 * width + skip  # version and flags, creation and modification times
            patched[offset : offset + width] = bytes(width)
            at = patched.find(box, at + 1)
    return bytes(patched)


def _tone(span: slice) -> np.ndarray:
    t = np.arange(span.start, span.stop, dtype=np.float32) / SAMPLE_RATE
    mono = 0.2 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono, mono], axis=1).astype(np.float32)
