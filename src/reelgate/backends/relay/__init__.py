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

from typing import TYPE_CHECKING

from reelgate.backends.relay.backend import RelayBackend
from reelgate.backends.relay.config import Kind
from reelgate.backends.relay.plans import plan_for
from reelgate.backends.relay.upstream import hub_for

if TYPE_CHECKING:
    from reelgate.catalog import ModelEntry
    from reelgate.settings import Settings

__all__ = [
    "RelayBackend",
    "ark",
    "chat_relay",
    "dashscope",
    "fal",
    "kling",
    "minimax",
    "openai_videos",
    "replicate",
    "veo",
]


def openai_videos(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `openai-videos` and `openai-videos:UPSTREAM`."""
    return _build("openai-videos", name, settings, entries)


def chat_relay(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `chat-relay` and `chat-relay:UPSTREAM`."""
    return _build("chat-relay", name, settings, entries)


def veo(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `veo` and `veo:UPSTREAM`."""
    return _build("veo", name, settings, entries)


def kling(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `kling` and `kling:UPSTREAM`."""
    return _build("kling", name, settings, entries)


def dashscope(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `dashscope` and `dashscope:UPSTREAM`."""
    return _build("dashscope", name, settings, entries)


def ark(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `ark` and `ark:UPSTREAM`."""
    return _build("ark", name, settings, entries)


def minimax(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `minimax` and `minimax:UPSTREAM`."""
    return _build("minimax", name, settings, entries)


def replicate(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `replicate` and `replicate:UPSTREAM`."""
    return _build("replicate", name, settings, entries)


def fal(name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    """The registry's factory for `fal` and `fal:UPSTREAM`."""
    return _build("fal", name, settings, entries)


def _build(kind: Kind, name: str, settings: Settings, entries: list[ModelEntry]) -> RelayBackend:
    hub = hub_for(settings)
    instance = name.partition(":")[2] or None
    return RelayBackend(name, {entry.name: plan_for(entry, kind, instance, hub) for entry in entries}, hub)
