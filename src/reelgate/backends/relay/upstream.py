"""Upstreams at run time: each one's config, key, circuit breaker and concurrency slots, shared by
every model (and backend name) that sends to it within this process."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, ValidationError

from reelgate.backends.relay.auth import check_secret, headers_for
from reelgate.backends.relay.breaker import CircuitBreaker
from reelgate.backends.relay.config import Kind, UpstreamConfig
from reelgate.backends.relay.retry import RetryPolicy
from reelgate.observability.logging import redact

if TYPE_CHECKING:
    from reelgate.settings import Settings


class Slots:
    """Jobs in flight at one upstream. `limit` 0 means no cap; `take` may exceed it (resumed jobs)."""

    def __init__(self, limit: int, on_release: Callable[[], None]) -> None:
        self.limit = limit
        self.used = 0
        self._on_release = on_release

    @property
    def free(self) -> bool:
        return self.limit == 0 or self.used < self.limit

    def take(self) -> Callable[[], None]:
        """Take a slot; the returned function gives it back (once, however often it is called)."""
        self.used += 1
        given = False

        def give() -> None:
            nonlocal given
            if not given:
                given = True
                self.used -= 1
                self._on_release()

        return give


@dataclass
class Upstream:
    name: str
    kind: Kind
    config: UpstreamConfig
    api_key: SecretStr | None
    breaker: CircuitBreaker
    slots: Slots
    retry: RetryPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.retry = RetryPolicy(self.config.retries, self.config.retry_backoff, self.config.max_retry_wait)

    def url(self, path: str) -> str:
        return f"{self.config.base_url}/{path.lstrip('/')}"

    def owns(self, url: str) -> bool:
        """Whether `url` is on the upstream's own origin, where its key may be sent."""
        ours, theirs = urlsplit(self.config.base_url), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    def auth_headers(self, url: str) -> dict[str, str]:
        if self.api_key is None or not self.owns(url):
            return {}
        return headers_for(self.kind, self.api_key.get_secret_value())

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.read_timeout, connect=self.config.connect_timeout)

    def scrub(self, text: str) -> str:
        """`text` without this upstream's key in it (upstreams sometimes quote the key they refused)."""
        if self.api_key is not None:
            key = self.api_key.get_secret_value()
            text = text.replace(key, "***")
            for half in key.split(":"):  # a key pair's halves (kling), each a secret of its own
                if len(half) >= 8:
                    text = text.replace(half, "***")
        return redact(text)


class UpstreamHub:
    """The upstreams of one process (one `Settings`), made when first named by a catalog entry."""

    def __init__(self, configs: Mapping[str, Mapping[str, Any]]) -> None:
        self._configs = dict(configs)
        self._upstreams: dict[str, Upstream] = {}
        self._released: asyncio.Event | None = None

    def get(self, name: str, default_kind: Kind) -> Upstream:
        """The upstream called `name`; ValueError when it is not configured or its config is wrong."""
        upstream = self._upstreams.get(name)
        if upstream is None:
            upstream = self._upstreams[name] = self._make(name, default_kind)
        elif upstream.config.kind is None and upstream.kind != default_kind:
            raise ValueError(
                f"upstream {name!r} is named by both {upstream.kind} and {default_kind} models; "
                "set its `kind` to the protocol it speaks"
            )
        return upstream

    def find(self, name: str) -> Upstream | None:
        return self._upstreams.get(name)

    def _make(self, name: str, default_kind: Kind) -> Upstream:
        if name not in self._configs:
            known = ", ".join(sorted(self._configs)) or "none"
            raise ValueError(f"upstream {name!r} is not configured (configured upstreams: {known})")
        try:
            config = UpstreamConfig.model_validate(self._configs[name])
        except ValidationError as exc:
            raise ValueError(f"upstream {name!r}: {exc}") from exc
        try:
            key = config.api_key()
            if key is not None:
                check_secret(config.kind or default_kind, key.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"upstream {name!r}: {exc}") from exc
        return Upstream(
            name=name,
            kind=config.kind or default_kind,
            config=config,
            api_key=key,
            breaker=CircuitBreaker(config.breaker_failures, config.breaker_cooldown),
            slots=Slots(config.max_concurrency, self._release),
        )

    def _release(self) -> None:
        if self._released is not None:
            self._released.set()
            self._released = None

    async def released(self) -> None:
        """Wait until any upstream gives a slot back."""
        if self._released is None:
            self._released = asyncio.Event()
        await self._released.wait()

    def scrub(self, text: str) -> str:
        for upstream in self._upstreams.values():
            text = upstream.scrub(text)
        return text


# Upstream state (breakers, slots) must be shared by every backend built from one Settings, and the
# registry builds backends one name at a time; so hubs are kept per Settings object, weakly.
_hubs: dict[int, tuple[weakref.ref[Settings], UpstreamHub]] = {}


def hub_for(settings: Settings) -> UpstreamHub:
    key = id(settings)
    held = _hubs.get(key)
    if held is not None and held[0]() is settings:
        return held[1]
    hub = UpstreamHub(settings.upstreams)
    _hubs[key] = (weakref.ref(settings, lambda _ref: _hubs.pop(key, None)), hub)
    return hub
