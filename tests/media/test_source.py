"""Source videos are decoded in a killable child (`SourceReader`): within a time limit and the upload caps,
at the render's size, and only as much sound as the render needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reelgate.errors import GenerationError
from reelgate.media.encode import SAMPLE_RATE
from reelgate.media.join import last_frame
from reelgate.media.source import SourceFrames, SourceReader, fitted_sound
from tests.inputs.clips import make_clip, make_giant_frames


def test_frames_come_at_the_render_size_in_the_render_timing(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0, width=640, height=360, fps=8)
    source = SourceFrames(clip, 4, 32, 32)
    frames = [source.frame(k) for k in range(6)]
    assert {frame.shape for frame in frames} == {(32, 32, 3)}
    reds = [int(frame[..., 0].mean()) for frame in frames]
    assert reds == sorted(reds) and reds[0] < 20 < reds[-1]  # frame k shows the clip at k/4 s
    assert np.array_equal(source.frame(0), frames[0])  # an earlier frame reads again from the start
    source.close()


def test_past_its_time_limit_the_decode_is_killed_and_says_so(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    reader = SourceReader(clip, "frames", 8, 64, 48, start=0.0)
    with pytest.raises(GenerationError, match="could not be decoded in 0 seconds"):
        reader.read(64 * 48 * 3, 0.0)
    assert reader._child.poll() is not None


def test_a_source_whose_real_frames_are_giant_fails_with_the_reason(tmp_path: Path) -> None:
    source = SourceFrames(make_giant_frames(tmp_path / "giant.mov"), 8, 64, 48)
    with pytest.raises(GenerationError, match="a frame is 4096x4096, larger than 4096 pixels a side or"):
        source.frame(0)
    with pytest.raises(GenerationError, match="or 4096x2160 in all"):
        last_frame(tmp_path / "giant.mov")


def test_a_garbage_tail_ends_the_source_where_the_damage_starts(tmp_path: Path) -> None:
    data = make_clip(tmp_path / "clip.mp4", seconds=2.0, width=64, height=48, fps=8).read_bytes()
    half = len(data) // 2
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:half] + np.random.default_rng(0).bytes(len(data) - half))
    source = SourceFrames(damaged, 8, 64, 48)
    frames = [source.frame(k) for k in range(24)]  # past the clip's 16 frames: the last good one is held
    assert np.array_equal(frames[-1], frames[-2])
    source.close()


def test_sound_is_cut_where_the_render_ends_and_none_without_any(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    sound = fitted_sound(clip, SAMPLE_RATE // 2)
    assert sound is not None and sound.shape == (SAMPLE_RATE // 2, 2) and sound.dtype == np.float32
    assert 0.05 < float(np.abs(sound).max()) < 0.5  # the clip's quiet tone
    padded = fitted_sound(clip, 3 * SAMPLE_RATE)
    assert padded is not None and not padded[-SAMPLE_RATE // 2 :].any()  # silence past its 2 s
    assert fitted_sound(make_clip(tmp_path / "mute.mp4", audio=False), 100) is None
