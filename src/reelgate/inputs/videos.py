"""A client's uploaded source video (an edit's, an extension's or a character's), from upload to frames.

    UploadFile ──copy (byte cap)──> temp file ──sniff (ftyp)──> probe (child process, time limit)
               ──check (duration, frame size, frame count)──> UploadedVideo ──key_frames──> PIL images

FFmpeg reads the client's bytes only in a child process (`inputs/video_probe.py`) that is killed if it
runs past `video_probe_timeout`, so a hostile file (truncated, renamed, a huge frame count, a frame the
size of a poster) is a 400 naming the request parameter, never a 500 and never a hung request.
`read_key_frames` decodes a character's key frames (only files `read_upload` accepted) in such a child
too (`media/source_reader.py`), from a worker thread, under the same time limit and the same bound on
readers at once: a clip that probes fine but decodes slowly is a 400, and the event loop never waits on
it. `key_frames` (the child's side) scales each frame down while it is converted, so that no full-size
RGB copy of a 4K frame is made.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import sys
import tempfile
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
from PIL import Image
from starlette.datastructures import UploadFile

from reelgate.errors import GenerationError, InvalidRequest, RequestTooLarge
from reelgate.inputs.video_probe import DEMUXER, MAX_FPS, MAX_PIXELS, MAX_SIDE, Probe, frame_at
from reelgate.media.source import SourceReader, within_caps
from reelgate.settings import Settings

#: The first box of an ISO media (MP4) file, or of a QuickTime MOV written before `ftyp` existed.
_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_CHUNK = 1024 * 1024

#: FFmpeg readers of uploads at once per process: a probe is a child Python with FFmpeg loaded (~80 MB),
#: a key-frame decode holds FFmpeg's buffers (~60 MB for a 4K clip). Small uploads are cheap to send, so
#: without a bound 30 at once took ~1 GB more; further uploads wait their turn on disk instead.
READERS_AT_ONCE = max(2, min(8, os.cpu_count() or 2))
_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class UploadedVideo:
    """An accepted upload on local disk: `path` lives in a folder of its own, removed by `discard()`."""

    path: Path
    seconds: float
    width: int  #: as shown (a rotated phone video's upright size)
    height: int
    fps: float
    has_audio: bool

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


async def read_upload(upload: UploadFile, settings: Settings, param: str) -> UploadedVideo:
    """The upload copied to a temp file and checked: an MP4/MOV FFmpeg can read, within the caps.

    413 beyond `video_upload_max_bytes`; 400 (`invalid_value`, `param`) for anything that is not a
    readable video with a duration up to `video_upload_max_seconds` and frames up to 4096 px a side.
    """
    folder = Path(tempfile.mkdtemp(prefix="reelgate-upload-"))
    try:
        path = folder / "source"
        await upload.seek(0)
        await asyncio.to_thread(_copy_capped, upload.file, path, settings.video_upload_max_bytes, param)
        _sniff(path, param)
        async with _reader():
            found = await _probe(path, settings.video_upload_probe_timeout, param)
        _check(found, settings.video_upload_max_seconds, param)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return UploadedVideo(path, found.seconds, found.width, found.height, found.fps, found.has_audio)


async def read_key_frames(path: Path, count: int, max_side: int, time_limit: float) -> list[Image.Image]:
    """`key_frames` decoded in a child process that is killed past `time_limit` seconds (a 400 naming
    `video`), waited on from a worker thread within the process's bound on FFmpeg readers."""
    async with _reader():
        return await asyncio.to_thread(_key_frames_in_child, path, count, max_side, time_limit)


def _key_frames_in_child(path: Path, count: int, max_side: int, time_limit: float) -> list[Image.Image]:
    try:
        with SourceReader(path, "keys", count, max_side, start=time_limit) as reader:
            return [_key_frame(reader, max_side) for _ in range(count)]
    except GenerationError as exc:
        raise _invalid(exc.message.replace("The source video", "'video'", 1), "video") from exc


def _key_frame(reader: SourceReader, max_side: int) -> Image.Image:
    width, height = struct.unpack("<II", reader.read(8, 0.0))
    if max(width, height) > max_side:  # the child's word is checked before its size is trusted
        raise GenerationError(f"The source video could not be decoded: a key frame came back {width}x{height}.")
    return Image.frombytes("RGB", (width, height), reader.read(width * height * 3, 0.0))


@asynccontextmanager
async def _reader() -> AsyncIterator[None]:
    """One of `READERS_AT_ONCE` places (per event loop: a semaphore belongs to the loop it waits on)."""
    loop = asyncio.get_running_loop()
    slots = _readers.get(loop)
    if slots is None:
        slots = _readers[loop] = asyncio.Semaphore(READERS_AT_ONCE)
    async with slots:
        yield


def _copy_capped(source: IO[bytes], target: Path, max_bytes: int, param: str) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise RequestTooLarge(f"'{param}' is larger than the limit of {max_bytes} bytes.", param=param)
            out.write(chunk)
    if size == 0:
        raise _invalid(f"'{param}' is empty.", param)


def _sniff(path: Path, param: str) -> None:
    with path.open("rb") as file:
        head = file.read(12)
    if head[4:8] not in _BOXES:
        raise _invalid(f"'{param}' is not an MP4 or MOV video.", param)


async def _probe(path: Path, time_limit: float, param: str) -> Probe:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reelgate.inputs.video_probe",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(), time_limit)
    except TimeoutError as exc:
        raise _invalid(f"'{param}' could not be read in {time_limit:g} seconds.", param) from exc
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    return _parsed(out, param)


def _parsed(out: bytes, param: str) -> Probe:
    """The child's answer; a crash (no JSON line) reads as an unreadable file, which it was."""
    try:
        answer = json.loads(out.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = {"error": "the reader stopped"}
    if "error" in answer:
        raise _invalid(f"'{param}' could not be read as a video: {answer['error']}.", param)
    return Probe(**answer)


def _check(found: Probe, max_seconds: float, param: str) -> None:
    if found.seconds <= 0:
        raise _invalid(f"'{param}' has no duration.", param)
    if found.seconds > max_seconds:
        raise _invalid(f"'{param}' is {found.seconds:.1f} seconds long; the limit is {max_seconds:g}.", param)
    if max(found.width, found.height) > MAX_SIDE or found.width * found.height > MAX_PIXELS:
        raise _invalid(
            f"'{param}' is {found.width}x{found.height}; the limit is {MAX_SIDE} pixels a side and 4096x2160 in all.",
            param,
        )
    if found.fps > MAX_FPS or found.frames > found.seconds * MAX_FPS + 1:
        raise _invalid(f"'{param}' has more frames than {MAX_FPS} a second.", param)


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def key_frames(path: Path | str, count: int, max_side: int) -> list[Image.Image]:
    """`count` RGB frames evenly spaced over the video (the middle of each 1/count), upright, scaled so
    that their longer side is at most `max_side`.

    Each frame is decoded, then scaled during the colour conversion, so one full-size frame is held at a
    time; one larger than an upload may be is a ValueError. Where the data runs out early the last decoded
    frame stands in for the missing ones. Runs in `read_key_frames`' child process.
    """
    if count < 1 or max_side < 1:
        raise ValueError(f"count and max_side must be positive, got {count} and {max_side}")
    try:
        with av.open(str(path), format=DEMUXER) as container:
            frames = _spaced(container, count, max_side)
    except av.FFmpegError as exc:
        raise _invalid(f"The video could not be decoded: {exc}", "video") from exc
    if len(frames) < count:
        raise _invalid("The video could not be decoded.", "video")
    return frames


def _spaced(container: av.container.InputContainer, count: int, max_side: int) -> list[Image.Image]:
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        seconds = (container.duration or 0) / av.time_base
    frames: list[Image.Image] = []
    for index in range(count):
        frame = frame_at(container, (index + 0.5) * seconds / count)
        if frame is not None:
            frames.append(_small(within_caps(frame), max_side))
        elif frames:
            frames.append(frames[-1])
    return frames


def _small(frame: av.VideoFrame, max_side: int) -> Image.Image:
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    image = frame.reformat(width=width, height=height, format="rgb24").to_image()
    rotation = int(frame.rotation) % 360
    # FFmpeg's rotation is counter-clockwise; PIL's `rotate` too, in whole quarter turns (no resampling).
    return image.rotate(rotation, expand=True) if rotation else image
