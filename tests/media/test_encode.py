"""The MP4 writer and the stills cut from its files, checked by decoding what was written."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, make_spritesheet, make_thumbnail, samples_for_frame
from reelgate.media.probe import probe, read_audio, read_frame


def _write(path: Path, width: int = 96, height: int = 160, fps: int = 10, seconds: int = 2) -> Path:
    tone = np.sin(2 * np.pi * 440 * np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    stereo = np.stack([tone, -tone], axis=1) * 0.5
    with Mp4Writer(path, width, height, fps, preset="ultrafast") as writer:
        for index in range(seconds * fps):
            frame = np.full((height, width, 3), index * 255 // (seconds * fps), np.uint8)
            writer.write(frame, stereo[samples_for_frame(index, fps)])
    return path


def test_mp4_has_the_promised_streams_and_lengths(tmp_path: Path) -> None:
    info = probe(_write(tmp_path / "v.mp4"))
    assert (info.width, info.height, info.frames) == (96, 160, 20)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.audio_codec, info.audio_sample_rate, info.audio_channels) == ("aac", 48_000, 2)
    assert info.audio_duration == pytest.approx(2.0, abs=0.05)


def test_index_is_at_the_front_for_progressive_playback(tmp_path: Path) -> None:
    data = _write(tmp_path / "v.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_frames_and_sound_survive_the_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.mp4")
    assert read_frame(path, 0).mean() < 20 and read_frame(path, 19).mean() > 220
    samples, rate = read_audio(path)
    assert rate == 48_000 and samples.shape[0] == 2
    middle = samples[:, SAMPLE_RATE // 2 : SAMPLE_RATE]
    assert np.corrcoef(middle[0], middle[1])[0, 1] < -0.9  # the channels stay distinct (one is inverted)


@pytest.mark.parametrize("fps", [7, 8, 24, 25, 30])
def test_audio_slices_add_up_to_whole_seconds(fps: int) -> None:
    slices = [samples_for_frame(i, fps) for i in range(fps * 3)]
    assert slices[0].start == 0 and slices[-1].stop == 3 * SAMPLE_RATE
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError), Mp4Writer(path, 64, 64, 10) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
        raise RuntimeError("render broke")
    assert not path.exists()


def test_thumbnail_and_spritesheet_decode_with_the_video_aspect(tmp_path: Path) -> None:
    video = _write(tmp_path / "v.mp4", width=288, height=512)
    with Image.open(make_thumbnail(video, tmp_path / "t.webp")) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (288, 512)
    with Image.open(make_spritesheet(video, tmp_path / "s.jpg", columns=4, rows=3, tile_width=72)) as sheet:
        assert sheet.format == "JPEG" and sheet.size == (4 * 72, 3 * 128)
        tiles = np.asarray(sheet.convert("L"), np.float32)
    first, last = tiles[:128, :72].mean(), tiles[256:, 216:].mean()
    assert last > first + 100  # tiles run from the dark start of the video to its bright end
