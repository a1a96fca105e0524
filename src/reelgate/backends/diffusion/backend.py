"""The `diffusers` backend: open video models (Wan, LTX-Video, LTX-2) on this machine's GPU.

The model is loaded once, at worker start (`start`), and stays resident. All GPU work runs in one
thread, so a GPU makes one video at a time; further tasks wait their turn. Until the model is
loaded, and for good if loading failed, `problem` says why the backend is not ready.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.diffusion.config import DiffusionConfig
from reelgate.backends.diffusion.extension import render_extension
from reelgate.backends.diffusion.loader import Loaded, LoadError, load
from reelgate.backends.diffusion.render import Job, Stopped, render
from reelgate.backends.diffusion.warmup import Served, run_shapes, warm_up
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)


class DiffusionBackend:
    def __init__(
        self, name: str, config: DiffusionConfig, *, preset: str = "veryfast", served: tuple[Served, ...] = ()
    ) -> None:
        self.name = name
        self.config = config
        self.preset = preset
        self.served = served  #: the videos the catalog may ask for: what memory is planned and warmed up for
        self.loaded: Loaded | None = None
        self._problem: str | None = f"loading {config.family.name} weights {config.weights!r}"
        self._failed = False
        self._gpu = ThreadPoolExecutor(1, thread_name_prefix="reelgate-gpu")
        self._starting: asyncio.Future[None] | None = None

    @property
    def can_extend(self) -> bool:
        """Continues videos (`POST /v1/videos/extensions`) only with an image-to-video pipeline, which starts
        the continuation on the source's last frame: LTX's shares the text model's weights, Wan's needs its own."""
        return self.config.family.image_shares_weights or self.config.image_weights is not None

    @property
    def can_edit(self) -> bool:
        """Edits videos (`POST /v1/videos/edits`) where the family has a video-to-video pipeline (Wan 2.1);
        once loaded, where one was built (Wan 2.2's two experts have none)."""
        if self.loaded is not None:
            return self.loaded.video_pipeline is not None
        return self.config.family.video_pipeline is not None

    @property
    def takes_characters(self) -> bool:
        """Shows characters only with an image-to-video pipeline: the first character's key frame is the
        image the video starts from (unless the request brought a reference image of its own)."""
        return self.config.family.image_shares_weights or self.config.image_weights is not None

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
        except Exception as exc:  # whatever load or warm-up raised: OOM, dynamo, a cache hook
            reason = str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"
            self._problem, self._failed = f"failed to load: {reason}", True
            log.error("backend %s: %s", self.name, self._problem, exc_info=not isinstance(exc, LoadError))
            gc.collect()
        else:
            self._problem = None
            log.info("backend %s: ready on %s", self.name, self.loaded.device)

    def _load_and_warm_up(self) -> Loaded:
        family = self.config.family
        loaded = load(self.config, run_shapes(self.config, self.served, family.side_multiple, family.frame_step))
        warmup = self.config.warmup
        if warmup if warmup is not None else (self.config.compile is not False and loaded.device != "cpu"):
            shapes = run_shapes(self.config, self.served, loaded.side_multiple, loaded.frame_step)
            log.info("backend %s: warming up %d run shapes", self.name, len(shapes))
            warm_up(Job(loaded, self.config, threading.Event(), self.preset), shapes)
        return loaded

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
            if spec.extend_of is not None:
                return render_extension(job, spec, workdir, on_progress)
            return render(job, spec, workdir, on_progress)
        except Stopped:
            raise GenerationError("The generation was stopped.", code="cancelled") from None
        except torch.OutOfMemoryError as exc:
            raise GenerationError("The GPU ran out of memory for this video.", code="gpu_out_of_memory") from exc
