"""Uploaded source videos: accepted MP4/MOV described right, hostile files a 400 (or 413), key frames small."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.datastructures import UploadFile

from reelgate.errors import InvalidRequest, RequestTooLarge
from reelgate.inputs.videos import UploadedVideo, key_frames, read_upload
from reelgate.settings import Settings
from tests.conftest import make_settings
from tests.inputs.clips import make_audio_only, make_clip, make_mov, zero_durations


def upload(data: bytes, name: str = "clip.mp4") -> UploadFile:
    return UploadFile(file=io.BytesIO(data), filename=name)


async def read(data: bytes, settings: Settings) -> UploadedVideo:
    return await read_upload(upload(data), settings, "video")


async def refused(data: bytes, settings: Settings, *words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await read(data, settings)
    error = caught.value
    assert type(error) is InvalidRequest and error.status_code == 400
    assert (error.param, error.code) == ("video", "invalid_value")
    for word in words:
        assert word in error.message


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, video_upload_max_seconds=4.0, video_upload_max_bytes=2_000_000)


async def test_an_mp4_is_described_and_its_temp_file_discarded(tmp_path: Path, settings: Settings) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0, width=96, height=64, fps=8)
    video = await read(clip.read_bytes(), settings)
    assert (video.seconds, video.width, video.height, video.fps, video.has_audio) == (3.0, 96, 64, 8.0, True)
    assert video.path.read_bytes() == clip.read_bytes()
    video.discard()
    assert not video.path.parent.exists()


async def test_a_mov_without_sound_is_accepted(tmp_path: Path, settings: Settings) -> None:
    video = await read(make_mov(tmp_path / "clip.mov", seconds=1.0).read_bytes(), settings)
    assert (video.width, video.height, video.has_audio) == (64, 48, False)
    assert video.seconds == pytest.approx(1.0, abs=0.15)
    video.discard()


async def test_a_file_over_the_byte_cap_is_a_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, video_upload_max_bytes=4096)
    data = make_clip(tmp_path / "clip.mp4", seconds=4.0, width=160, height=120).read_bytes()
    assert len(data) > 4096
    with pytest.raises(RequestTooLarge) as caught:
        await read(data, settings)
    assert (caught.value.status_code, caught.value.param) == (413, "video")


async def test_hostile_files_are_400s(tmp_path: Path, settings: Settings) -> None:
    good = make_clip(tmp_path / "clip.mp4", seconds=2.0).read_bytes()
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    await refused(png.getvalue(), settings, "not an MP4 or MOV")
    await refused(b"", settings, "empty")
    await refused(good[:16] + bytes(range(256)) * 40, settings, "could not be read")
    await refused(good[: len(good) // 2], settings, "could not be read")
    await refused(zero_durations(good), settings, "no duration")
    await refused(make_audio_only(tmp_path / "sound.mp4").read_bytes(), settings, "could not be read")


async def test_a_moov_at_the_end_cut_off_is_a_400(tmp_path: Path, settings: Settings) -> None:
    # Written without +faststart the index comes last; cutting the file loses it.
    mov = make_mov(tmp_path / "clip.mov", seconds=2.0).read_bytes()
    await refused(mov[: len(mov) * 3 // 4], settings, "could not be read")


async def test_caps_on_duration_frame_size_and_frame_rate(tmp_path: Path, settings: Settings) -> None:
    await refused(make_clip(tmp_path / "long.mp4", seconds=5.0).read_bytes(), settings, "5.0 seconds", "limit is 4")
    wide = make_clip(tmp_path / "wide.mp4", seconds=0.25, width=4112, height=16, audio=False)
    await refused(wide.read_bytes(), settings, "4112x16")
    # A second of 1000 frames: a frame count no camera makes.
    fast = make_clip(tmp_path / "fast.mp4", seconds=1.0, width=16, height=16, fps=1000, audio=False)
    await refused(fast.read_bytes(), settings, "frames")


def test_key_frames_are_evenly_spaced_and_small(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=4.0, width=320, height=240, fps=8)
    frames = key_frames(clip, 4, 80)
    assert [frame.size for frame in frames] == [(80, 60)] * 4
    reds = [float(np.asarray(frame)[..., 0].mean()) for frame in frames]
    # Red rises over the clip: the middles of each quarter are about 1/8, 3/8, 5/8 and 7/8 of 255.
    assert reds == sorted(reds)
    assert reds == pytest.approx([255 * (2 * i + 1) / 8 for i in range(4)], abs=20)


def test_key_frames_never_upscale(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, width=64, height=48, fps=8)
    assert [frame.size for frame in key_frames(clip, 2, 1024)] == [(64, 48)] * 2


async def test_a_reader_past_its_time_limit_is_killed_and_the_file_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, video_upload_probe_timeout=0.001)
    await refused(make_clip(tmp_path / "clip.mp4").read_bytes(), settings, "could not be read in")
