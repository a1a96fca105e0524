"""Fast fakes of the backend port for tests and demos (as httpx ships MockTransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from reelgate.backends.base import Backend, GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.errors import GenerationError


class FailingBackend:
    """Reports some progress, then fails with `message`."""

    name = "fail"

    def __init__(self, message: str = "The backend failed on purpose.", progress: Sequence[int] = (10, 30)) -> None:
        self.message = message
        self.progress = progress

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        for percent in self.progress:
            on_progress(percent)
            await asyncio.sleep(0)
        raise GenerationError(self.message)


class GatedBackend:
    """Waits until `gate` is set, then lets `inner` generate: holds tasks in progress on demand."""

    def __init__(self, inner: Backend, name: str = "gated") -> None:
        self.name = name
        self.inner = inner
        self.gate = asyncio.Event()
        self.started = 0
        self.entered = asyncio.Event()

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        self.started += 1
        self.entered.set()
        on_progress(1)
        await self.gate.wait()
        return await self.inner.generate(spec, workdir, on_progress)
