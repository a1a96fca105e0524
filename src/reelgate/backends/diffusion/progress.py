"""One video's progress, 0..100 and never backwards, over its phases.

Each shot takes an equal part of the first `SHOTS_END` percent: its denoising steps most of it
(counted from `callback_on_step_end`, out of `pipe.num_timesteps`), its VAE decode the rest. The
soundtrack and the MP4 encode share what is left, the encode by frames written.
"""

from __future__ import annotations

import threading

from reelgate.backends.base import ProgressCallback

SHOTS_END = 90
SOUND_END = 92
#: The share of a shot's part that its denoising steps take; the decode after them takes the rest.
DENOISE_SHARE = 0.9


class Progress:
    def __init__(self, on_progress: ProgressCallback, shots: int) -> None:
        self._report = on_progress
        self._shots = shots
        self._sent = -1
        self._lock = threading.Lock()

    def step(self, shot: int, done: int, total: int) -> None:
        """Denoising step `done` (1-based) of `total` of shot `shot` has finished."""
        self._shot_fraction(shot, DENOISE_SHARE * done / max(1, total))

    def decoded(self, shot: int) -> None:
        self._shot_fraction(shot, 1.0)

    def sound_ready(self) -> None:
        self._send(SOUND_END)

    def encoded(self, done: int, total: int) -> None:
        self._send(SOUND_END + (100 - SOUND_END) * done // max(1, total))

    def _shot_fraction(self, shot: int, fraction: float) -> None:
        self._send(int(SHOTS_END * (shot + fraction) / self._shots))

    def _send(self, percent: int) -> None:
        with self._lock:
            if percent <= self._sent:
                return
            self._sent = percent
        self._report(percent)
