"""Joining MP4s end to end: one file with each part's frames and sound in turn, cut at a length."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame
from reelgate.media.join import join, last_frame
from reelgate.media.probe import probe, read_audio


def _part(path: Path, colour: tuple[int, int, int], seconds: int, fps: int, *, size=(64, 48), sound=True) -> Path:
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    with Mp4Writer(path, *size, fps, preset="ultrafast") as writer:
        for index in range(seconds * fps):
            audio = np.stack([tone, tone], axis=1)[samples_for_frame(index, fps)] if sound else None
            writer.write(np.full((size[1], size[0], 3), colour, np.uint8), audio)
    return path


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_parts_play_in_turn_at_one_rate_and_size_with_their_sound(tmp_path: Path) -> None:
    red = _part(tmp_path / "red.mp4", (250, 0, 0), 2, 8)
    blue = _part(tmp_path / "blue.mp4", (0, 0, 250), 1, 24, size=(96, 64), sound=False)
    out = join([red, blue], tmp_path / "out.mp4", width=64, height=48, fps=8)
    info = probe(out)
    assert (info.width, info.height, info.frames) == (64, 48, 24)
    assert info.duration == pytest.approx(3.0, abs=0.05) and info.audio_duration == pytest.approx(3.0, abs=0.05)
    colours = [int(np.argmax(frame.reshape(-1, 3).mean(axis=0))) for frame in _frames(out)]
    assert colours == [0] * 16 + [2] * 8
    samples, _ = read_audio(out)
    loud = np.abs(samples[:, :SAMPLE_RATE]).mean()
    quiet = np.abs(samples[:, int(2.2 * SAMPLE_RATE) :]).mean()
    assert loud > 0.2 and quiet < 0.01  # the second part had no sound: silence, not the first part's


def test_cut_at_a_length(tmp_path: Path) -> None:
    a = _part(tmp_path / "a.mp4", (0, 250, 0), 2, 8)
    b = _part(tmp_path / "b.mp4", (250, 0, 0), 2, 8)
    out = join([a, b], tmp_path / "out.mp4", width=64, height=48, fps=8, seconds=3)
    assert probe(out).duration == pytest.approx(3.0, abs=0.05) and probe(out).frames == 24
    assert last_frame(out)[..., 0].mean() > 200  # the second part's red, cut after its first second
