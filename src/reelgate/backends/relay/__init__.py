"""Relay backends: videos made by upstream providers and re-hosted by reelgate.

Two kinds, one machinery:

- `openai-videos`: any upstream speaking OpenAI's Videos API (`openai_videos.py`).
- `chat-relay`: upstreams that make videos behind chat completions, in the seed provider's markdown
  or sora2api's `<video>` form (`chat_relay.py`, `chat_reading.py`).
- native task APIs: `veo` (Google's Veo on the Gemini API, `veo.py`), `kling` (Kling, `kling.py`),
  `dashscope` (Wan on Alibaba Cloud Model Studio, `dashscope.py`), `ark` (Seedance on Volcengine Ark, `ark.py`),
  `minimax` (Hailuo, `minimax.py`), `replicate` (any video model on Replicate, `replicate.py`),
  `fal` (any video model on fal's queue, `fal.py`).

Upstreams are configured in settings (`config.UpstreamConfig`), models route to them through their
catalog options (`config.ModelOptions`, turned into plans by `plans.py`). `backend.py` runs a video:
place or resume the job, follow it, download the result. Shared parts: the HTTP edge that maps httpx
errors once (`exchange.py`, `faults.py`), retries (`retry.py`), circuit breakers (`breaker.py`),
concurrency slots and failover (`upstream.py`, `routing.py`), job documents and polling
(`documents.py`, `polling.py`), the task's checkpoint (`jobs.py`), and downloads that refuse dead links
(`transfer.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from reelgate.backends.relay.backend import RelayBackend
from reelgate.backends.relay.config import KINDS, Kind
from reelgate.backends.relay.plans import plan_for
from reelgate.backends.relay.upstream import hub_for

if TYPE_CHECKING:
    from reelgate.catalog import ModelEntry
    from reelgate.settings import Settings

__all__ = ["RelayBackend", "from_settings"]


def from_settings(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for every relay kind: `veo`, `veo:UPSTREAM`, `openai-videos`, ... (the kind is
    the part of `name` before a colon, the upstream instance the part after it)."""
    kind, _, instance = name.partition(":")
    if kind not in KINDS:
        raise ValueError(f"{name!r} is not a relay backend (relay kinds: {', '.join(KINDS)})")
    hub = hub_for(settings)
    plans = {entry.name: plan_for(entry, cast(Kind, kind), instance or None, hub) for entry in entries}
    return RelayBackend(name, plans, hub)
