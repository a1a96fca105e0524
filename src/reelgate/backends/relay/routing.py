"""Which upstream gets a video: routes by priority and weight, failover, breakers and slots.

`place` tries a model's routes in order (lower priority first; within a priority, a weighted random
order). It skips an upstream whose circuit is open and fails over to the next when a create fails.
When every usable upstream is at its concurrency cap it waits for a slot (a queue, not an error);
only when every circuit is open, or every route failed, does the video fail.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reelgate.backends.asks import Ask, Refusal
from reelgate.backends.base import Orientation, VideoSpec, full_prompt
from reelgate.backends.relay.config import ModelName
from reelgate.backends.relay.faults import UpstreamError
from reelgate.backends.relay.jobs import JobRequest
from reelgate.backends.relay.makes import Makes, refusal
from reelgate.backends.relay.upstream import Upstream, UpstreamHub
from reelgate.errors import GenerationError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    upstream: Upstream
    model: ModelName
    priority: int
    weight: float
    seconds: Mapping[int, int]
    sizes: Mapping[str, str]
    prompt_template: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def request(self, spec: VideoSpec, idempotency_key: str) -> JobRequest:
        """The video as this route's upstream is asked for it."""
        size = f"{spec.width}x{spec.height}"
        seconds = self.seconds.get(spec.seconds, spec.seconds)
        return JobRequest(
            model=self.model_for(spec.orientation),
            prompt=self._prompt(spec, seconds),
            seconds=seconds,
            size=self.sizes.get(size) or self.sizes.get(spec.orientation.value) or size,
            orientation=spec.orientation,
            idempotency_key=idempotency_key,
            image=spec.first_frame,
            parameters=self.parameters,
            characters=spec.characters,
            edit=spec.edit_of.video if spec.edit_of else None,
        )

    def model_for(self, orientation: Orientation) -> str:
        """The upstream's model name for videos of `orientation`."""
        return self.model if isinstance(self.model, str) else self.model[orientation.value]

    def refusal(self, ask: Ask, makes: Makes, chained: bool = False) -> Refusal | None:
        """Why this route's upstream model (which `makes` what it makes) cannot meet `ask`, or None;
        `chained`: the plan meets the seconds asked by chaining calls."""
        orientation = ask.orientation or Orientation.PORTRAIT
        mapped = ask.size is not None and any(
            name in self.sizes for name in (f"{ask.size[0]}x{ask.size[1]}", orientation.value)
        )
        sent = None if ask.seconds is None else self.seconds.get(ask.seconds, ask.seconds)
        return refusal(makes, ask, mapped, sent, chained)

    def _prompt(self, spec: VideoSpec, seconds: int) -> str:
        # A relayed remix is a new video from the original prompt and the instructions since.
        prompt = full_prompt(spec)
        if self.upstream.kind != "chat-relay":
            return prompt
        ratio = "9:16" if spec.height > spec.width else "16:9"
        return self.prompt_template.format(
            prompt=prompt, ratio=ratio, orientation=spec.orientation.value, seconds=seconds
        )


@dataclass(frozen=True)
class Plan:
    """How one catalog model is relayed."""

    model: str
    routes: tuple[Route, ...]
    #: The model's own deadline, else each upstream's.
    deadline: float | None = None
    #: How a video longer than one call is made (`chaining.py`): "extend", "shots" or None (it is not).
    chain: str | None = None
    #: The durations one call makes (native kinds); empty when the upstream takes any.
    made: tuple[int, ...] = ()

    def deadline_for(self, upstream: Upstream) -> float:
        return self.deadline or upstream.config.deadline

    @property
    def longest_deadline(self) -> float:
        return self.deadline or max(route.upstream.config.deadline for route in self.routes)


def ordered(routes: tuple[Route, ...], rng: random.Random) -> list[Route]:
    """Lower priority first; within a priority a weighted shuffle (a weight-3 route leads 3 times as often)."""
    keyed = [(route.priority, -(rng.random() ** (1 / route.weight)), index) for index, route in enumerate(routes)]
    return [routes[index] for _, _, index in sorted(keyed)]


Start = Callable[[Route], Awaitable[T]]


async def place(
    plan: Plan, hub: UpstreamHub, start: Start[T], stack: AsyncExitStack, rng: random.Random
) -> tuple[Route, T]:
    """Start the job on the first route that accepts it; its slot is held until `stack` closes."""
    tried: set[int] = set()
    last: UpstreamError | None = None
    while True:
        waiting = False
        for route in ordered(plan.routes, rng):
            if id(route) in tried or not route.upstream.breaker.available():
                continue
            if not route.upstream.slots.free:
                waiting = True
                continue
            tried.add(id(route))
            try:
                return route, await _try(route, start, stack)
            except UpstreamError as exc:
                log.warning("upstream %s refused the video: %s", route.upstream.name, exc.message)
                last = exc
        if not waiting:
            raise _nobody(last)
        await hub.released()


async def _try(route: Route, start: Start[T], stack: AsyncExitStack) -> T:
    """One route's create, retried as its upstream allows; the slot stays taken only if it succeeds."""
    upstream = route.upstream
    give = upstream.slots.take()
    upstream.breaker.begin()
    try:
        result = await upstream.retry.run(lambda: start(route), f"create at {upstream.name}")
    except UpstreamError as exc:
        give()
        if exc.unhealthy:
            upstream.breaker.failed()
        else:
            upstream.breaker.succeeded()
        raise
    except BaseException:
        give()
        upstream.breaker.abandoned()
        raise
    upstream.breaker.succeeded()
    stack.callback(give)
    return result


def _nobody(last: UpstreamError | None) -> GenerationError:
    if last is None:
        return GenerationError(
            "No upstream can take this video right now (all are failing); please try again later.",
            code="upstream_unavailable",
        )
    return GenerationError(
        f"The upstream did not accept this video: {last.message}", code=last.code or "upstream_refused"
    )
