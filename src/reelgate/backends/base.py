"""The backend port: turn a `VideoSpec` into an MP4 file on local disk.

A backend knows nothing about HTTP, tasks or billing. The worker hands it a spec, a private
working directory and a progress callback; it returns the files it made, or raises
`reelgate.errors.GenerationError` with a message fit for the user.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from reelgate.media.probe import MediaInfo


class Orientation(StrEnum):
    PORTRAIT = "portrait"  #: taller than wide (9:16)
    LANDSCAPE = "landscape"  #: wider than tall (16:9)


@dataclass(frozen=True)
class VideoSpec:
    """Everything a backend needs to make one video."""

    prompt: str
    orientation: Orientation
    seconds: int
    width: int
    height: int
    fps: int
    seed: int
    model: str
    #: An image the video must open on (image-to-video), already fitted to `width` x `height`; None if none.
    first_frame: Path | None = None
    #: The video this one remixes: the spec's `prompt` is then the instruction that changes it.
    remix_of: RemixSource | None = None
    #: The video this one continues: its frames open the video, and `seconds` counts them too.
    extend_of: ExtendSource | None = None
    #: Characters (`POST /v1/videos/characters`) the video shows, in the order the request named them.
    characters: tuple[CharacterRef, ...] = ()
    #: The video this one edits: the spec's `prompt` is then the instruction that changes it, and
    #: `seconds`, `width` and `height` are the source's.
    edit_of: EditSource | None = None
    #: Where the backend may keep a note that outlives this process (the runner gives one; may be None).
    checkpoint: Checkpoint | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RemixSource:
    """What a backend needs of the parent video to keep what a remix instruction leaves alone."""

    prompt: str
    seed: int


@dataclass(frozen=True)
class ExtendSource:
    """The completed video an extension continues: its prompt and seed (to go on with its storyboard),
    its length and its MP4 (whose frames and sound open the extension)."""

    prompt: str
    seed: int
    seconds: int
    video: Path
    #: The source task's backend note (`Checkpoint.saved`): a relay finds there the upstream's own
    #: reference to the video, to extend it where it was made.
    backend_state: str | None = None


@dataclass(frozen=True)
class EditSource:
    """The video an edit changes, keeping its timing and framing: its MP4 (in the workdir) and, for a
    video reelgate made from a prompt alone, that prompt and seed, so that a backend may edit its
    storyboard rather than its pixels. An uploaded file has neither."""

    video: Path
    prompt: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class CharacterRef:
    """A character the video shows: its name and one key frame of its clip (a PNG in the workdir)."""

    name: str
    frame: Path


#: Between a parent's prompt and the remix instructions that follow it.
REMIX_JOINER = "，"


def full_prompt(spec: VideoSpec) -> str:
    """What a backend that cannot edit a video makes for `spec`: a remix is its parent's prompt with
    the instruction added, in the same way the worker chains the instructions of earlier remixes."""
    return REMIX_JOINER.join((spec.remix_of.prompt, spec.prompt)) if spec.remix_of else spec.prompt


@dataclass(frozen=True)
class Checkpoint:
    """A backend's note on its task that survives a restart, such as the id of a job an upstream accepted.

    `saved` is what an earlier attempt of the same task saved (None on a first attempt); `save` stores a
    new note durably before it returns. The note is the backend's own text (e.g. JSON); nothing else reads it.
    """

    task_id: str
    saved: str | None
    save: Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class GeneratedVideo:
    """Files a backend made inside its working directory.

    `thumbnail` may be None; the worker then cuts one from the video. `probed` is what `media.probe.probe`
    found in the finished video where the backend probed it itself (the procedural renderer does, in its
    render process); None, and the worker probes it.
    """

    video: Path
    thumbnail: Path | None = None
    probed: MediaInfo | None = None


#: Called with a whole percentage, 0..100, never decreasing. Safe to call from any thread.
ProgressCallback = Callable[[int], None]


class Backend(Protocol):
    name: str

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo: ...


class Lifecycle(Protocol):
    """Optional, for backends that must load something (model weights) before they can generate.

    The runtime calls `start` when the worker starts, without waiting for it, and `close` at shutdown.
    `problem` is None once ready, else why not ("loading ...", or why loading failed); `failed` says
    the backend will never be ready in this process, so its models refuse requests (503).
    """

    @property
    def problem(self) -> str | None: ...

    @property
    def failed(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Closing(Protocol):
    """Optional, for backends that hold something to let go of at shutdown (child processes)."""

    async def close(self) -> None: ...


def closing(backend: Backend) -> Closing | None:
    """`backend` as a `Closing` if it has an async `close` (every `Lifecycle` has one)."""
    close = getattr(backend, "close", None)
    return backend if close is not None and inspect.iscoroutinefunction(close) else None  # type: ignore[return-value]


def can_edit(backend: object, model: str) -> bool:
    """Whether `backend` edits videos (`VideoSpec.edit_of`) for `model`: its `can_edit` flag, or where the
    answer depends on the model (a relay: on its upstreams' kinds), its `can_edit_model(model)`."""
    per_model = getattr(backend, "can_edit_model", None)
    if per_model is not None:
        return bool(per_model(model))
    return bool(getattr(backend, "can_edit", False))


def lifecycle(backend: Backend) -> Lifecycle | None:
    """`backend` as a `Lifecycle` if it has one (duck-typed, so fakes need not declare it)."""
    has_all = all(hasattr(backend, attr) for attr in ("problem", "failed", "start", "close"))
    return backend if has_all else None  # type: ignore[return-value]
