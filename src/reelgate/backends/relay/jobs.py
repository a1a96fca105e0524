"""A relayed job's records: what is asked, what the task remembers across restarts, what came back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from reelgate.backends.base import CharacterRef, Checkpoint, Orientation, ProgressCallback
from reelgate.errors import GenerationError


@dataclass(frozen=True)
class JobRequest:
    """One video as a route asks its upstream for it (names, duration and size already mapped)."""

    model: str
    prompt: str
    seconds: int
    size: str
    orientation: Orientation
    #: Sent as `Idempotency-Key` on creates, so an upstream that honours it never makes the video twice.
    idempotency_key: str
    image: Path | None = None
    #: The provider's own parameters from the catalog (native kinds), sent as they are.
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: The upstream's own reference to a video it made (a Veo file URI, an OpenAI video id) that this job
    #: extends: the upstream's extension call instead of a new video (see `chaining.py`).
    extend: str | None = None
    #: Characters the video shows (`characters.py`): created on the upstream, then named by its ids.
    characters: tuple[CharacterRef, ...] = ()
    #: The video this job edits (`POST /videos/edits`), uploaded to the upstream as a file: the upstream
    #: knows nothing of reelgate's video ids.
    edit: Path | None = None


@dataclass(frozen=True)
class JobState:
    """What a task keeps in its checkpoint once an upstream accepted its video.

    With it, a restarted process follows the same upstream job instead of ordering (and paying for)
    the video again.
    """

    upstream: str
    #: Unix time by which the upstream must have finished.
    deadline_at: float
    #: The upstream's id for the job, once known.
    job_id: str | None = None
    #: A JSON document to poll for the job (a chat upstream's raw-data link), once known.
    follow_url: str | None = None
    #: The upstream's own reference to the finished video, where it can extend it (see `chaining.py`).
    video_ref: str | None = None

    def dump(self) -> str:
        return json.dumps({"relay": 1, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> JobState:
        try:
            data = json.loads(text)
            data.pop("relay")
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise GenerationError(
                "This video's upstream job could not be resumed: its saved state is unreadable.",
                code="upstream_lost",
            ) from exc


@dataclass(frozen=True)
class Outcome:
    """Where a finished job's files are, best candidate first."""

    video_urls: tuple[str, ...]
    thumbnail_urls: tuple[str, ...] = ()


class Watch:
    """What a running job reports: progress to the task, and its state to the task's checkpoint."""

    def __init__(self, on_progress: ProgressCallback, checkpoint: Checkpoint | None) -> None:
        self._on_progress = on_progress
        self._checkpoint = checkpoint
        self.state: JobState | None = JobState.load(checkpoint.saved) if checkpoint and checkpoint.saved else None

    def progress(self, percent: int) -> None:
        self._on_progress(percent)

    async def record(self, state: JobState) -> None:
        """Keep `state` durably (before the caller goes on) unless it is what is kept already."""
        if state == self.state:
            return
        self.state = state
        if self._checkpoint is not None:
            await self._checkpoint.save(state.dump())

    async def learn(
        self, *, job_id: str | None = None, follow_url: str | None = None, video_ref: str | None = None
    ) -> None:
        """Add what the upstream has just said about its job to the kept state."""
        if self.state is None:
            return
        await self.record(
            replace(
                self.state,
                job_id=job_id or self.state.job_id,
                follow_url=follow_url or self.state.follow_url,
                video_ref=video_ref or self.state.video_ref,
            )
        )
