"""What every task-id upstream shares: create names a job, a status URL is polled until it ends.

A provider module declares only what differs: its `name` (and what it calls a job, `noun`), its
`create` call (the job id it is given), the `status_path` of a job, its `read`er of the status answer
and, when the finished status is not yet the video's address, its `deliver` step. Starting, finishing
and resuming after a restart (never ordering the video again) live here once.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from reelgate.backends.relay.documents import JobDocument
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.polling import poll
from reelgate.backends.relay.protocol import Started
from reelgate.errors import GenerationError


class TaskApi:
    """The relay protocol of an upstream whose create answers a job id that is then polled."""

    #: The upstream's name in messages ("Ark").
    name = "the upstream"
    #: What the upstream calls a job ("task", "operation", "prediction").
    noun = "task"
    #: What one call makes, for every model (`makes` tells models apart where the upstream does).
    can_make = Makes()

    def makes(self, model: str, parameters: Mapping[str, Any]) -> Makes:
        """What one call of the upstream's `model` (with the catalog's `parameters`) can make."""
        return self.can_make

    async def create(self, exchange: Exchange, job: JobRequest) -> str:
        """Order the video once; the job id the upstream named (see `job_id`)."""
        raise NotImplementedError

    def status_path(self, job_id: str) -> str:
        """The job's status, relative to the upstream's base URL."""
        raise NotImplementedError

    def read(self, body: object) -> JobDocument:
        """The status answer as a job document; a retryable UpstreamError when it is none."""
        raise NotImplementedError

    async def deliver(self, exchange: Exchange, job_id: str, doc: JobDocument) -> Outcome:
        """Where the finished job's files are: by default those its last status named."""
        return Outcome(video_urls=doc.video_urls, thumbnail_urls=doc.thumbnail_urls)

    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        return Started(job_id=await self.create(exchange, job))

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        assert started.job_id is not None
        return await self.follow(exchange, started.job_id, watch)

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        if state.job_id is None:
            raise GenerationError(
                f"The server restarted before {self.name} named this video's {self.noun}; it was not ordered again.",
                code="upstream_lost",
            )
        return await self.follow(exchange, state.job_id, watch)

    async def follow(self, exchange: Exchange, job_id: str, watch: Watch) -> Outcome:
        url = exchange.upstream.url(self.status_path(job_id))
        return await self.deliver(exchange, job_id, await poll(exchange, url, watch, read=self.read))

    def job_id(self, value: object, field: str) -> str:
        """`value` as the job id of a create answer; a non-retryable UpstreamError when there is none."""
        if not isinstance(value, str) or not value:
            raise UpstreamError(f"{self.name}'s create answer has no {field}", retryable=False)
        return value


async def data_uri(image: Path) -> str:
    """The reference image (a PNG) as a `data:` URI."""
    return f"data:image/png;base64,{await base64_of(image)}"


async def base64_of(image: Path) -> str:
    return base64.b64encode(await asyncio.to_thread(image.read_bytes)).decode()
