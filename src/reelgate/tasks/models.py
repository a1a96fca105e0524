"""Domain records for tasks. Not SQL tables (`store/tables.py`), not wire shapes (`api/schemas.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from reelgate.backends.base import Orientation


class TaskStatus(StrEnum):
    QUEUED = "queued"  #: accepted and charged, waiting for a worker slot
    IN_PROGRESS = "in_progress"  #: a worker claimed it and the backend is generating
    COMPLETED = "completed"  #: the video and thumbnail are stored; final
    FAILED = "failed"  #: ended without a video; `error` says why; final

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str


@dataclass(frozen=True)
class Task:
    id: str
    key_id: str
    model: str
    backend: str
    status: TaskStatus
    progress: int
    prompt: str
    orientation: Orientation
    seconds: int
    size: str
    fps: int
    seed: int
    price: int
    created_at: datetime
    attempts: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    share_id: str | None = None
    video_file: str | None = None
    thumbnail_file: str | None = None
    error: TaskError | None = None
    expires_at: datetime | None = None
    files_expired: bool = False
    remixed_from: str | None = None
    extended_from: str | None = None
    #: The completed video this one edits (`POST /v1/videos/edits`).
    edited_from: str | None = None
    #: Storage key of an uploaded source video (an edit or an extension of a file).
    input_video: str | None = None
    #: What `input_video` is: "edit" (the video this one changes) or "extend" (the video it continues).
    input_video_role: str | None = None
    #: JSON list of the character ids the prompt refers to, or None.
    characters: str | None = None
    input_image: str | None = None
    spritesheet_file: str | None = None
    deleted_at: datetime | None = None
    #: The backend's checkpoint (`backends.base.Checkpoint`); internal, never shown to clients.
    backend_state: str | None = None

    @property
    def stored_files(self) -> tuple[str, ...]:
        """Storage keys of every file kept for this task: video, thumbnail, spritesheet, reference image and video."""
        keys = (self.video_file, self.thumbnail_file, self.spritesheet_file, self.input_image, self.input_video)
        return tuple(key for key in keys if key is not None)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    @classmethod
    def from_row(cls, row: Any) -> Task:
        """The task of a row: SQLAlchemy's, or a named tuple (`store.db.plain_rows`)."""
        return cls.from_values(row._asdict())

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Task:
        """The task of a row given as a dict by column name (which it takes for its own)."""
        code, message = values.pop("error_code"), values.pop("error_message")
        for internal in ("worker_id", "heartbeat_at", "request_hash"):
            values.pop(internal, None)
        return cls(
            **{
                **values,
                "status": TaskStatus(values["status"]),
                "orientation": Orientation(values["orientation"]),
                "error": TaskError(code, message or "") if code else None,
            }
        )
