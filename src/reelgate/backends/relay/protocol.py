"""The port each upstream protocol implements: start a job, see it through, or take it up again."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch


@dataclass(frozen=True)
class Started:
    """An upstream accepted a job (it is paid for from here on)."""

    job_id: str | None = None
    follow_url: str | None = None
    #: Whatever the protocol needs to go on (an open chat stream, the create answer).
    carry: Any = None


class RelayProtocol(Protocol):
    async def start(self, exchange: Exchange, job: JobRequest, stack: AsyncExitStack) -> Started:
        """Ask for the video once; UpstreamError when it was not accepted. `stack` outlives the job."""
        ...

    async def finish(self, exchange: Exchange, started: Started, watch: Watch) -> Outcome:
        """Follow an accepted job to its result; GenerationError when it fails upstream."""
        ...

    async def resume(self, exchange: Exchange, state: JobState, watch: Watch) -> Outcome:
        """Follow a job an earlier process started, from its saved state, never ordering it again."""
        ...
