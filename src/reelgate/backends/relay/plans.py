"""Catalog entries -> relay plans, checked at start-up (a wrong upstream name stops the server there)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from reelgate.backends.relay.ark import DURATIONS as ARK_DURATIONS
from reelgate.backends.relay.chaining import chain_advice, check_chain, check_models, sent_sizes
from reelgate.backends.relay.config import Kind, ModelOptions, RouteOptions
from reelgate.backends.relay.dashscope import DURATIONS as WAN_DURATIONS
from reelgate.backends.relay.kling import DURATIONS as KLING_DURATIONS
from reelgate.backends.relay.minimax import DURATIONS as HAILUO_DURATIONS
from reelgate.backends.relay.routing import Plan, Route
from reelgate.backends.relay.upstream import UpstreamHub
from reelgate.backends.relay.veo import DURATIONS as VEO_DURATIONS

if TYPE_CHECKING:
    from reelgate.catalog import ModelEntry

log = logging.getLogger(__name__)

#: The durations one call of a native kind makes; a catalog entry promising others is refused at start-up.
DURATIONS: dict[Kind, tuple[int, ...]] = {
    "veo": VEO_DURATIONS,
    "kling": KLING_DURATIONS,
    "dashscope": WAN_DURATIONS,
    "ark": ARK_DURATIONS,
    "minimax": HAILUO_DURATIONS,
}


def plan_for(entry: ModelEntry, kind: Kind, instance: str | None, hub: UpstreamHub) -> Plan:
    """How `entry` is relayed; ValueError naming the model when its options or upstreams are wrong."""
    try:
        options = ModelOptions.model_validate(entry.options)
    except ValidationError as exc:
        raise ValueError(f"model {entry.name!r}: options: {exc}") from exc
    chosen = options.upstreams or ([RouteOptions(upstream=instance)] if instance else [])
    if not chosen:
        raise ValueError(
            f"model {entry.name!r}: backend {kind!r} needs an upstream: "
            f'write backend = "{kind}:NAME" or list options.upstreams'
        )
    try:
        routes = tuple(_route(entry, options, choice, hub, kind) for choice in chosen)
    except ValueError as exc:
        raise ValueError(f"model {entry.name!r}: {exc}") from exc
    for route in routes:
        if options.chain is None:
            _check_durations(entry, route)
        else:
            check_chain(entry.name, options.chain, route.upstream.kind, sent_sizes(entry, route))
            check_models(entry.name, options.chain, route)
        _warn_on_other_durations(entry, route)
    return Plan(entry.name, routes, options.deadline, chain=options.chain, made=DURATIONS.get(kind, ()))


def _route(entry: ModelEntry, options: ModelOptions, choice: RouteOptions, hub: UpstreamHub, kind: Kind) -> Route:
    return Route(
        upstream=hub.get(choice.upstream, kind),
        model=choice.model or options.model or entry.name,
        priority=choice.priority,
        weight=choice.weight,
        seconds={**options.seconds, **choice.seconds},
        sizes={**options.sizes, **choice.sizes},
        prompt_template=options.prompt_template,
        parameters=options.parameters,
    )


def _check_durations(entry: ModelEntry, route: Route) -> None:
    """A native upstream makes only its own durations: one that is not among them stops the server."""
    made = DURATIONS.get(route.upstream.kind)
    if made is None:
        return
    for seconds in entry.allowed_seconds:
        sent = route.seconds.get(seconds, seconds)
        if sent not in made:
            raise ValueError(
                f"model {entry.name!r}: {seconds} s videos would be asked of upstream {route.upstream.name!r} "
                f"as {sent} s, but {route.upstream.kind} makes {', '.join(map(str, made))} s in one call; "
                "map the duration in options.seconds (and say so in the catalog's `seconds`), or chain calls: "
                f"options.chain = {chain_advice(route.upstream.kind)}"
            )


def _warn_on_other_durations(entry: ModelEntry, route: Route) -> None:
    for seconds in entry.allowed_seconds:
        sent = route.seconds.get(seconds, seconds)
        if sent != seconds:
            log.warning(
                "model %r: %d s videos are made as %d s at upstream %r; "
                "say so in the catalog (its `seconds`) so users know what they get",
                entry.name,
                seconds,
                sent,
                route.upstream.name,
            )
