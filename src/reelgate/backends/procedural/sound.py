"""The soundtrack: a chord per shot, a soft pulse, and a drum accent on every cut, in stereo.

Made whole, as float32 samples of shape (n, 2) at 48 kHz, before any frame is encoded; a 15 s film
is 720,000 samples, a few megabytes.
"""

from __future__ import annotations

import numpy as np

from reelgate.backends.procedural.script import Storyboard
from reelgate.media.encode import SAMPLE_RATE

#: Semitones of the chords the shots step through (a pentatonic-friendly loop).
CHORDS = ((0, 4, 7), (-3, 0, 4), (5, 9, 12), (7, 11, 14), (2, 5, 9), (-5, -1, 2))
PAD_LEVEL, PULSE_LEVEL, ACCENT_LEVEL = 0.06, 0.05, 0.75
CROSSFADE_SECONDS = 0.04


def soundtrack(board: Storyboard, rng: np.random.Generator) -> np.ndarray:
    total = board.frames * SAMPLE_RATE // board.fps
    out = np.zeros((total, 2), np.float32)
    for shot in board.shots:
        start, end = _sample(shot.start, board.fps), _sample(shot.end, board.fps)
        chord = CHORDS[shot.index % len(CHORDS)]
        pan = 0.3 if shot.index % 2 else -0.3
        _add(out, start, _pad(board.root_hz, chord, end - start, rng), pan)
    _pulse(out, board.tempo, rng)
    for frame in [0, *board.cuts]:
        _add(out, _sample(frame, board.fps), _accent(rng), 0.0)
    return _master(out)


def _sample(frame: int, fps: int) -> int:
    return frame * SAMPLE_RATE // fps


def _pad(root_hz: float, chord: tuple[int, ...], length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length, dtype=np.float32) / SAMPLE_RATE
    tone = np.zeros(length, np.float32)
    for semitone in chord:
        hz = root_hz * 2 ** (semitone / 12) * (1 + rng.uniform(-0.002, 0.002))
        tone += np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t)
    tremolo = 0.8 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t)
    fade = min(length // 2, int(CROSSFADE_SECONDS * SAMPLE_RATE))
    envelope = np.ones(length, np.float32)
    if fade:
        envelope[:fade] = np.linspace(0, 1, fade)
        envelope[-fade:] = np.linspace(1, 0, fade)
    return PAD_LEVEL * tone * tremolo * envelope


def _pulse(out: np.ndarray, tempo: float, rng: np.random.Generator) -> None:
    """A quiet tick on every beat, alternating sides."""
    tick = _noise_burst(0.03, rng) * PULSE_LEVEL
    beat = 60.0 / tempo
    for n, when in enumerate(np.arange(beat / 2, len(out) / SAMPLE_RATE, beat)):
        _add(out, int(when * SAMPLE_RATE), tick, 0.5 if n % 2 else -0.5)


def _accent(rng: np.random.Generator) -> np.ndarray:
    """A kick (a falling sine) with a snap of noise: the sound of a cut."""
    t = np.arange(int(0.35 * SAMPLE_RATE), dtype=np.float32) / SAMPLE_RATE
    sweep = 45 + 110 * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.exp(-t / 0.12)
    snap = np.zeros_like(kick)
    burst = _noise_burst(0.08, rng)
    snap[: len(burst)] = burst
    return ACCENT_LEVEL * (0.8 * kick + 0.4 * snap)


def _noise_burst(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    return (rng.uniform(-1, 1, n) * np.exp(-np.arange(n) / (n / 5))).astype(np.float32)


def _add(out: np.ndarray, start: int, mono: np.ndarray, pan: float) -> None:
    """Mix `mono` into `out` from `start`, equal-power panned (-1 left .. 1 right), cut at the end."""
    end = min(len(out), start + len(mono))
    if end <= start:
        return
    angle = (pan + 1) * np.pi / 4
    piece = mono[: end - start]
    out[start:end, 0] += piece * np.cos(angle)
    out[start:end, 1] += piece * np.sin(angle)


def _master(out: np.ndarray) -> np.ndarray:
    fade = min(len(out), int(0.3 * SAMPLE_RATE))
    if fade:
        out[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
    return np.tanh(out * 1.2).astype(np.float32)
