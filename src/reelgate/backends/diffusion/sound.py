"""Every video has a soundtrack: the model's own (LTX-2), the procedural one aligned to the cuts, or
a text-to-audio pipeline's (Stable Audio Open) from the same prompt.

All of them end as float32 stereo at 48 kHz, exactly as long as the video.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import av
import numpy as np

from reelgate.backends.procedural.script import plan, seed_for
from reelgate.backends.procedural.sound import soundtrack
from reelgate.media.encode import SAMPLE_RATE

#: Fade at each end of a model's audio clip, so that joins at cuts do not click.
EDGE_SECONDS = 0.01


def procedural(prompt: str, seed: int, seconds: int, fps: int, cuts: list[int]) -> np.ndarray:
    """The procedural renderer's soundtrack (a chord per shot, a drum accent per cut) on these cuts."""
    board = plan(prompt, seed, seconds, fps)
    edges = [0, *cuts, board.frames]
    shots = tuple(
        replace(board.shots[i % len(board.shots)], index=i, start=start, end=end)
        for i, (start, end) in enumerate(itertools.pairwise(edges))
    )
    return soundtrack(replace(board, shots=shots), np.random.default_rng(seed_for(prompt, seed)))


def to_48k(audio: np.ndarray, rate: int, samples: int) -> np.ndarray:
    """`audio` of shape (channels, n) at `rate` as (samples, 2) at 48 kHz, cut or padded with silence.

    A model's audio covers its whole run; the shot may use less of it, so the end is cut.
    """
    stereo = np.ascontiguousarray(_stereo(audio.astype(np.float32)))
    if rate != SAMPLE_RATE and stereo.shape[1]:
        stereo = _resample(stereo, rate)
    out = np.zeros((samples, 2), np.float32)
    used = min(samples, stereo.shape[1])
    out[:used] = stereo[:, :used].T
    fade = min(used // 2, int(EDGE_SECONDS * SAMPLE_RATE))
    if fade:
        out[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)[:, None]
        out[used - fade : used] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
    return out


def _stereo(audio: np.ndarray) -> np.ndarray:
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    return audio[:2]


def _resample(planar: np.ndarray, rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    frame.sample_rate = rate
    chunks = [*resampler.resample(frame), *resampler.resample(None)]
    if not chunks:
        return np.zeros((2, 0), np.float32)
    return np.concatenate([chunk.to_ndarray() for chunk in chunks], axis=1).astype(np.float32)
