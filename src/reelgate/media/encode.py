"""Writing MP4s (H.264 yuv420p + stereo AAC 48 kHz, `+faststart`) and cutting still images from them.

`Mp4Writer` takes RGB frames and float audio as they are made, so a renderer never holds a whole
film in memory. Audio is written in step with the video so the two streams interleave in the file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from PIL import Image

SAMPLE_RATE = 48_000
THUMBNAIL_LONG_SIDE = 768


class Mp4Writer:
    """An MP4 being written: `write(frame, audio)` once per video frame, then `close()`.

    `audio` is float32 in [-1, 1] with shape (n, 2); pass exactly the samples that belong to the
    frame (see `samples_for_frame`) and the audio ends exactly where the video does.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int, *, preset: str = "veryfast", crf: int = 23):
        self.path = path
        self.fps = fps
        self._container = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        try:
            self._video = self._container.add_stream("libx264", rate=fps)
            self._video.width = width
            self._video.height = height
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"preset": preset, "crf": str(crf), "g": str(fps * 2)}
            self._audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        except Exception:
            self._container.close()
            raise
        self._frames = 0
        self._samples = 0

    def write(self, frame: np.ndarray, audio: np.ndarray | None = None) -> None:
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts = self._frames
        video_frame.time_base = Fraction(1, self.fps)
        self._container.mux(self._video.encode(video_frame))
        self._frames += 1
        if audio is not None and len(audio):
            self._write_audio(audio)

    def _write_audio(self, samples: np.ndarray) -> None:
        planar = np.ascontiguousarray(samples.T.astype(np.float32))
        audio_frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        audio_frame.sample_rate = SAMPLE_RATE
        audio_frame.pts = self._samples
        audio_frame.time_base = Fraction(1, SAMPLE_RATE)
        self._container.mux(self._audio.encode(audio_frame))
        self._samples += len(samples)

    def close(self) -> None:
        """Flush both encoders and finish the file (moving the index to the front)."""
        try:
            self._container.mux(self._video.encode(None))
            self._container.mux(self._audio.encode(None))
        finally:
            self._container.close()

    def abort(self) -> None:
        self._container.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def samples_for_frame(index: int, fps: int) -> slice:
    """The audio samples that play during video frame `index`: whole frames add up to whole seconds.

    >>> samples_for_frame(0, 24), samples_for_frame(1, 24)
    (slice(0, 2000, None), slice(2000, 4000, None))
    """
    return slice(index * SAMPLE_RATE // fps, (index + 1) * SAMPLE_RATE // fps)


def save_thumbnail(frame: np.ndarray, out_path: Path, long_side: int = THUMBNAIL_LONG_SIDE) -> Path:
    """Save an RGB frame as a WebP still no longer than `long_side` on its long side, aspect kept."""
    image = Image.fromarray(frame)
    scale = min(1.0, long_side / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    image.save(out_path, format="WEBP", quality=82, method=4)
    return out_path


def make_thumbnail(video_path: Path, out_path: Path, at: float = 0.25) -> Path:
    """A WebP thumbnail of the frame at fraction `at` of the video's length."""
    frames = _frames_at(video_path, [at])
    return save_thumbnail(frames[0], out_path)


def make_spritesheet(
    video_path: Path, out_path: Path, *, columns: int = 5, rows: int = 5, tile_width: int = 192
) -> Path:
    """A JPEG grid of `columns * rows` frames spread evenly across the video, read left to right."""
    count = columns * rows
    frames = _frames_at(video_path, [(i + 0.5) / count for i in range(count)])
    height, width = frames[0].shape[:2]
    tile = (tile_width, max(1, round(height * tile_width / width)))
    sheet = Image.new("RGB", (tile[0] * columns, tile[1] * rows))
    for i, frame in enumerate(frames):
        thumb = Image.fromarray(frame).resize(tile, Image.Resampling.BILINEAR)
        sheet.paste(thumb, ((i % columns) * tile[0], (i // columns) * tile[1]))
    sheet.save(out_path, format="JPEG", quality=85)
    return out_path


def _frames_at(video_path: Path, fractions: list[float]) -> list[np.ndarray]:
    """Decode once, front to back, keeping the frames at the given fractions of the length."""
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or _count_frames(video_path)
        wanted = sorted({min(total - 1, max(0, int(f * total))) for f in fractions})
        found: dict[int, np.ndarray] = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                found[index] = frame.to_ndarray(format="rgb24")
            if index >= wanted[-1]:
                break
    if not found:
        raise ValueError(f"{video_path} has no decodable frames")
    last = found[max(found)]
    return [found.get(min(total - 1, max(0, int(f * total))), last) for f in fractions]


def _count_frames(video_path: Path) -> int:
    with av.open(str(video_path)) as container:
        return sum(1 for _ in container.demux(video=0)) or 1
