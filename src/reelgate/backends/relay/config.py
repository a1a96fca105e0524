"""Relay configuration: upstreams live in settings, each model's routes in its catalog `options`.

    [upstreams.acme]                        # or REELGATE_UPSTREAMS='{"acme": {...}}'
    base_url = "https://api.acme.example/v1"
    api_key_env = "ACME_API_KEY"            # or api_key_file = "/run/secrets/acme"
    max_concurrency = 4

    [models."sora-2-hd-15s-chat"]
    backend = "openai-videos:acme"          # kind:upstream
    seconds = 12                            # what the user really gets
    options = { model = "sora-2", seconds = { 12 = 12 }, sizes = { portrait = "720x1280" } }

A model served by several upstreams lists them, by priority then weight:

    options = { upstreams = [{ upstream = "acme", weight = 3 }, { upstream = "beta", priority = 1 }] }
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Kind = Literal["openai-videos", "chat-relay", "veo", "kling", "dashscope", "ark", "minimax", "replicate", "fal"]
KINDS: tuple[Kind, ...] = (
    "openai-videos",
    "chat-relay",
    "veo",
    "kling",
    "dashscope",
    "ark",
    "minimax",
    "replicate",
    "fal",
)

#: The seed provider reads the aspect ratio from the prompt; this is the phrase its document shows.
SEED_PROMPT = "{prompt},生成视频比例{ratio}"


class UpstreamConfig(BaseModel):
    """One upstream provider: where it is, how to authenticate, and how hard to push it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    #: The protocol it speaks; by default the kind of the catalog backend that names it.
    kind: Kind | None = None
    #: The API key comes from an environment variable or a file, never from the config itself.
    api_key_env: str | None = None
    api_key_file: Path | None = None
    connect_timeout: float = Field(10, gt=0)
    #: Longest wait for one answer; for a chat stream, the longest silence between two chunks.
    read_timeout: float = Field(120, gt=0)
    #: First wait between polls when the upstream sends no `openai-poll-after-ms`; grows while nothing moves.
    poll_interval: float = Field(5, gt=0)
    max_poll_interval: float = Field(30, gt=0)
    #: Seconds a video may take from being asked for until the upstream finishes it.
    deadline: float = Field(1800, gt=0)
    #: Extra tries of a request after connection errors, 429 and 5xx answers.
    retries: int = Field(4, ge=0, le=20)
    #: First wait before a retry; doubles each time, with jitter. A Retry-After header wins.
    retry_backoff: float = Field(1, gt=0)
    max_retry_wait: float = Field(60, gt=0)
    #: Jobs in flight at once at this upstream from this process; 0 = no cap. More wait their turn.
    max_concurrency: int = Field(0, ge=0)
    #: Failed creates in a row that open the circuit, and how long it stays open before a probe.
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown: float = Field(60, gt=0)
    max_download_bytes: int = Field(2 * 1024**3, ge=1024)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key_source(self) -> UpstreamConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("give api_key_env or api_key_file, not both")
        return self

    def api_key(self) -> SecretStr | None:
        """The key, read now from its variable or file; ValueError (without the key) when unreadable."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise ValueError(f"the environment variable {self.api_key_env} (api_key_env) is not set")
            return SecretStr(value)
        if self.api_key_file:
            try:
                value = self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read api_key_file {self.api_key_file}: {exc.strerror}") from exc
            if not value:
                raise ValueError(f"api_key_file {self.api_key_file} is empty")
            return SecretStr(value)
        return None


#: An upstream model name, or one per orientation: `{ portrait = "...-portrait", landscape = "...-landscape" }`.
ModelName = str | dict[Literal["portrait", "landscape"], str]


class RouteOptions(BaseModel):
    """One upstream a model may be sent to. Maps given here win over the model's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: str
    model: ModelName | None = None
    #: Lower goes first; within one priority, upstreams share the load by weight.
    priority: int = 0
    weight: float = Field(1, gt=0)
    seconds: dict[int, int] = Field(default_factory=dict)
    sizes: dict[str, str] = Field(default_factory=dict)


class ModelOptions(BaseModel):
    """A relayed catalog entry's `options`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The upstream's name for the model; the catalog name when not given.
    model: ModelName | None = None
    upstreams: list[RouteOptions] = Field(default_factory=list)
    #: reelgate's duration -> the upstream's (`{ 15 = 12 }`); durations not listed are sent as they are.
    seconds: dict[int, int] = Field(default_factory=dict)
    #: reelgate's size (`"1024x1792"`) or orientation (`"portrait"`) -> the upstream's size.
    sizes: dict[str, str] = Field(default_factory=dict)
    #: Overrides the upstreams' `deadline` for this model.
    deadline: float | None = Field(None, gt=0)
    #: chat-relay: the user message sent upstream; fields {prompt}, {ratio} ("9:16"), {orientation}, {seconds}.
    prompt_template: str = SEED_PROMPT
    #: Native kinds: the provider's own parameters sent with every video (Veo's `negativePrompt`, `seed`).
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: How a duration longer than one call makes is met (`chaining.py`): `extend` chains the provider's own
    #: extension call (veo), `shots` joins calls each started on the last frame of the one before.
    chain: Literal["extend", "shots"] | None = None

    @field_validator("prompt_template")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            value.format(prompt="", ratio="", orientation="", seconds=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"prompt_template {value!r}: {exc!r}") from exc
        return value
