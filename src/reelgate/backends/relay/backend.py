"""The relay backend: a video made by an upstream provider, downloaded here for reelgate to re-host.

generate(spec)
  ├─ checkpoint holds a job?  resume it on the same upstream (never a second create)
  └─ else place it: routes by priority/weight, breaker, slots, retries, failover
       └─ save {upstream, job id, deadline} to the task's checkpoint as soon as it is accepted
  follow it (poll / read the chat stream) within the deadline, reporting progress
  download the video and thumbnail into the working directory
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import httpx

from reelgate.backends.asks import Ask, Refusal
from reelgate.backends.base import GeneratedVideo, Orientation, ProgressCallback, VideoSpec
from reelgate.backends.relay.chaining import EXTENDS, Chain, by_chain, chained, extension_refusal
from reelgate.backends.relay.characters import TAKES_CHARACTERS
from reelgate.backends.relay.exchange import Exchange, tls_context
from reelgate.backends.relay.jobs import JobRequest, JobState, Outcome, Watch
from reelgate.backends.relay.protocol import Started
from reelgate.backends.relay.protocols import PROTOCOLS, makes_of
from reelgate.backends.relay.routing import Plan, Route, place
from reelgate.backends.relay.transfer import fetch_thumbnail, fetch_video
from reelgate.backends.relay.upstream import UpstreamHub
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)

#: A job resumed after its deadline passed (the server was down) still gets this long to be collected.
RESUME_GRACE = 30.0


def default_client() -> httpx.AsyncClient:
    # Redirects are followed for result links; httpx drops the key when a redirect leaves the origin.
    return httpx.AsyncClient(follow_redirects=True, headers={"User-Agent": "reelgate-relay"}, verify=tls_context())


class RelayBackend:
    def __init__(
        self,
        name: str,
        plans: Mapping[str, Plan],
        hub: UpstreamHub,
        *,
        client: Callable[[], httpx.AsyncClient] = default_client,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.plans = dict(plans)
        self._hub = hub
        self._client = client
        self._rng = rng or random.Random()

    def can_edit_model(self, model: str) -> bool:
        """Edits (`POST /v1/videos/edits`) pass through in one call to upstreams of OpenAI's Videos API, so
        a model edits when every route of it goes to one (and it chains no calls for long videos)."""
        plan = self.plans.get(model)
        kinds = {route.upstream.kind for route in plan.routes} if plan else set()
        return plan is not None and plan.chain is None and kinds == {"openai-videos"}

    def refusal(self, ask: Ask) -> Refusal | None:
        """What a route of the model cannot make of `ask`: any route may get the video, so each must make it.
        A duration the plan meets by chaining calls (`chaining.by_chain`) is not asked of one call."""
        plan = self.plans.get(ask.model)
        if plan is None:
            return None
        chained = ask.seconds is not None and by_chain(plan, ask.seconds)
        for route in plan.routes:
            makes = replace(makes_of(route, ask.orientation or Orientation.PORTRAIT), seconds=plan.made or None)
            found = route.refusal(ask, makes, chained=chained)
            if found is not None:
                return found
        return None

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        plan = self.plans.get(spec.model)
        if plan is None:
            raise GenerationError(f"The model `{spec.model}` is not relayed by `{self.name}` on this server.")
        try:
            if chained(plan, spec):
                return await Chain(self, plan, spec, workdir, on_progress).make()
            return await self._generate(plan, spec, workdir, Watch(on_progress, spec.checkpoint))
        except GenerationError as exc:
            # Upstream messages are kept for the user, but never a key an upstream quoted back.
            raise GenerationError(self._hub.scrub(exc.message), code=exc.code) from exc

    async def _generate(self, plan: Plan, spec: VideoSpec, workdir: Path, watch: Watch) -> GeneratedVideo:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._client())
            exchange, outcome = await self._run(plan, spec, watch, client, stack)
            await watch.learn(video_ref=self.video_ref(exchange.upstream.name, watch.state, outcome))
            video = await fetch_video(exchange, outcome.video_urls, workdir / "video.mp4")
            thumbnail = await fetch_thumbnail(exchange, outcome.thumbnail_urls, workdir / "thumbnail.webp")
        return GeneratedVideo(video, thumbnail)

    async def _run(
        self,
        plan: Plan,
        spec: VideoSpec,
        watch: Watch,
        client: httpx.AsyncClient,
        stack: AsyncExitStack,
        shape: Callable[[JobRequest], JobRequest] = lambda job: job,
    ) -> tuple[Exchange, Outcome]:
        """The job's outcome, from a fresh start or the checkpoint, within the task's deadline."""
        began = time.time()
        resumed = watch.state
        limit = asyncio.timeout(max(resumed.deadline_at - began, RESUME_GRACE) if resumed else plan.longest_deadline)
        try:
            async with limit:
                if resumed is not None:
                    return await self._resume(resumed, watch, client, stack)
                return await self._start(plan, spec, watch, client, stack, limit, began, shape)
        except TimeoutError as exc:
            if not limit.expired():
                raise
            raise GenerationError(
                f"The upstream did not finish this video within {self._allowed(plan, watch):g} seconds.",
                code="upstream_timeout",
            ) from exc

    def _allowed(self, plan: Plan, watch: Watch) -> float:
        upstream = self._hub.find(watch.state.upstream) if watch.state else None
        return plan.deadline_for(upstream) if upstream else plan.longest_deadline

    async def _start(
        self,
        plan: Plan,
        spec: VideoSpec,
        watch: Watch,
        client: httpx.AsyncClient,
        stack: AsyncExitStack,
        limit: asyncio.Timeout,
        began: float,
        shape: Callable[[JobRequest], JobRequest],
    ) -> tuple[Exchange, Outcome]:
        key = f"reelgate-{spec.checkpoint.task_id if spec.checkpoint else secrets.token_hex(12)}"

        async def start(route: Route) -> tuple[Exchange, Started]:
            exchange = Exchange(route.upstream, client)
            job = shape(route.request(spec, key))
            return exchange, await PROTOCOLS[route.upstream.kind].start(exchange, job, stack)

        route, (exchange, started) = await place(plan, self._hub, start, stack, self._rng)
        deadline_at = began + plan.deadline_for(route.upstream)
        limit.reschedule(asyncio.get_running_loop().time() + deadline_at - time.time())
        await watch.record(JobState(route.upstream.name, deadline_at, started.job_id, started.follow_url))
        log.info("relayed to upstream %s (job %s)", route.upstream.name, started.job_id or "pending")
        return exchange, await PROTOCOLS[route.upstream.kind].finish(exchange, started, watch)

    async def _resume(
        self, state: JobState, watch: Watch, client: httpx.AsyncClient, stack: AsyncExitStack
    ) -> tuple[Exchange, Outcome]:
        upstream = self._hub.find(state.upstream)
        if upstream is None:
            raise GenerationError(
                "The upstream that was making this video is no longer configured on this server.",
                code="upstream_lost",
            )
        stack.callback(upstream.slots.take())  # the job runs upstream already: it holds a slot, cap or not
        log.info("resuming the job %s at upstream %s", state.job_id or "(unnamed)", upstream.name)
        exchange = Exchange(upstream, client)
        return exchange, await PROTOCOLS[upstream.kind].resume(exchange, state, watch)

    # What a chain of calls (`chaining.py`: long videos, extensions) needs of this backend.

    @property
    def can_extend(self) -> bool:
        """Whether every model here is relayed to upstreams with an extension call (veo, openai-videos)."""
        return all(route.upstream.kind in EXTENDS for plan in self.plans.values() for route in plan.routes)

    @property
    def takes_characters(self) -> bool:
        """Whether every model here is relayed to upstreams whose create call takes `characters`."""
        return all(route.upstream.kind in TAKES_CHARACTERS for plan in self.plans.values() for route in plan.routes)

    def extension_refusal(self, model: str, backend_state: str | None) -> str | None:
        """Why `model` cannot extend the video whose task kept `backend_state` (None: it can)."""
        plan = self.plans.get(model)
        return extension_refusal(plan, backend_state) if plan else f"`{model}` is not relayed here."

    async def call(
        self, plan: Plan, spec: VideoSpec, watch: Watch, shape: Callable[[JobRequest], JobRequest]
    ) -> tuple[str, Outcome]:
        """One job of a chain, placed (or resumed from `watch`) and followed to its end; nothing downloaded."""
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._client())
            exchange, outcome = await self._run(plan, spec, watch, client, stack, shape)
        return exchange.upstream.name, outcome

    async def download(self, upstream: str, urls: tuple[str, ...], path: Path) -> Path:
        found = self._hub.find(upstream)
        if found is None:
            raise GenerationError(f"The upstream `{upstream}` is no longer configured on this server.")
        async with self._client() as client:
            return await fetch_video(Exchange(found, client), urls, path)

    def kind(self, upstream: str) -> str:
        found = self._hub.find(upstream)
        return found.kind if found else ""

    def video_ref(self, upstream: str, state: JobState | None, outcome: Outcome) -> str | None:
        """The upstream's own reference to a finished video, where its kind can extend videos."""
        reference = getattr(PROTOCOLS.get(self.kind(upstream)), "video_ref", None)  # type: ignore[call-overload]
        return reference(state, outcome) if reference and state else None
