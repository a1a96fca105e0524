"""The `diffusers` backend: open video models (Wan, LTX-Video, LTX-2) on this machine's GPU.

The model is loaded once, at worker start (`start`), and stays resident. All GPU work runs in one
thread, so a GPU makes one video at a time; further tasks wait their turn. Until the model is
loaded, and for good if loading failed, `problem` says why the backend is not ready.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reelgate.backends.base import GeneratedVideo, Orientation, ProgressCallback, VideoSpec
from reelgate.backends.diffusion.config import DiffusionConfig
from reelgate.backends.diffusion.loader import Loaded, LoadError, load
from reelgate.backends.diffusion.render import Job, Stopped, render
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)


class DiffusionBackend:
    def __init__(self, name: str, config: DiffusionConfig, *, preset: str = "veryfast") -> None:
        self.name = name
        self.config = config
        self.preset = preset
        self.loaded: Loaded | None = None
        self._problem: str | None = f"loading {config.family.name} weights {config.weights!r}"
        self._failed = False
        self._gpu = ThreadPoolExecutor(1, thread_name_prefix="reelgate-gpu")
        self._starting: asyncio.Future[None] | None = None

    @property
    def problem(self) -> str | None:
        """None when the model is loaded; else why not ("loading ...", or the load error)."""
        return self._problem

    @property
    def failed(self) -> bool:
        """Loading failed: this backend will never generate until the process restarts."""
        return self._failed

    async def start(self) -> None:
        """Load the model (once; later calls wait for the first). Never raises: see `problem`."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._load())
        await asyncio.shield(self._starting)

    async def _load(self) -> None:
        try:
            self.loaded = await asyncio.wrap_future(self._gpu.submit(self._load_and_warm_up))
        except LoadError as exc:
            self._problem, self._failed = f"failed to load: {exc}", True
            log.error("backend %s: %s", self.name, self._problem)
        else:
            self._problem = None
            log.info("backend %s: ready on %s", self.name, self.loaded.device)

    def _load_and_warm_up(self) -> Loaded:
        loaded = load(self.config)
        warmup = self.config.warmup
        if warmup if warmup is not None else (self.config.compile is not False and loaded.device != "cpu"):
            self._warm_up(loaded)
        return loaded

    def _warm_up(self, loaded: Loaded) -> None:
        """One short run at the native size, so that compilation happens now and not in a request."""
        width, height = self.config.native_size(True)
        spec = VideoSpec("warm-up", Orientation.PORTRAIT, 1, width, height, self.config.fps_native, 0, "warm-up")
        job = Job(loaded, self.config, threading.Event(), self.preset)
        with tempfile.TemporaryDirectory() as scratch:
            render(job, spec, Path(scratch), lambda _: None)

    async def close(self) -> None:
        self._gpu.shutdown(wait=True, cancel_futures=True)
        self.loaded = None
        gc.collect()

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        await self.start()
        if self.loaded is None:
            raise GenerationError(f"The model is not available: {self._problem}.", code="model_unavailable")
        job = Job(self.loaded, self.config, threading.Event(), self.preset)
        running = asyncio.wrap_future(self._gpu.submit(self._render, job, spec, workdir, on_progress))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            job.stop.set()  # the GPU thread stops after its current step
            await asyncio.wait({running})
            raise

    def _render(self, job: Job, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        import torch

        try:
            return render(job, spec, workdir, on_progress)
        except Stopped:
            raise GenerationError("The generation was stopped.", code="cancelled") from None
        except torch.OutOfMemoryError as exc:
            raise GenerationError("The GPU ran out of memory for this video.", code="gpu_out_of_memory") from exc
