"""SQL tables. Domain records live in `tasks/models.py` and `billing/`; wire shapes in `api/schemas.py`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    #: JSON list of model names this key may use; NULL means every model.
    Column("allowed_models", Text),
    #: Per-key limits; NULL means the server's defaults.
    Column("rpm_limit", Integer),
    Column("concurrency_limit", Integer),
    Column("deleted", Boolean, nullable=False, server_default=false()),
    #: Whether chat replies end with an HTML `<video>` player block; NULL means the server's setting.
    Column("player_block", Boolean),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("model", String(200), nullable=False),
    Column("backend", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("progress", Integer, nullable=False, server_default="0"),
    Column("prompt", Text, nullable=False),
    Column("orientation", String(16), nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("size", String(16), nullable=False),
    Column("fps", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("share_id", String(40), unique=True),
    #: Storage keys; indexed so that a request for a file finds its task (an expired file answers 410).
    Column("video_file", String(100), index=True),
    Column("thumbnail_file", String(100), index=True),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("worker_id", String(64)),
    Column("heartbeat_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    #: SHA-256 of (key, model, normalised messages): an identical re-send attaches to a running task.
    Column("request_hash", String(64), index=True),
    #: When the files may be deleted (retention); NULL keeps them forever.
    Column("expires_at", UtcDateTime, index=True),
    Column("files_expired", Boolean, nullable=False, server_default=false()),
    #: The task this one remixes (`POST /v1/videos/{id}/remix`, or a chat conversation going on).
    Column("remixed_from", String(40)),
    #: The completed video this one continues (`POST /v1/videos/extensions`): its first `seconds` are copied.
    Column("extended_from", String(40)),
    #: The completed video this one edits (`POST /v1/videos/edits`), keeping its timing and framing.
    Column("edited_from", String(40)),
    #: Storage key of an uploaded source video (an edit or extension of a file rather than of a task).
    Column("input_video", String(100)),
    #: What `input_video` is: `edit` (the video this one changes) or `extend` (the video it continues).
    Column("input_video_role", String(10)),
    #: JSON list of the character ids (`char_...`) the prompt refers to; NULL when none.
    Column("characters", Text),
    #: Storage key of the reference image (image-to-video), fitted to `size`.
    Column("input_image", String(100)),
    #: Storage key of the frame grid, made the first time a client asks for it.
    Column("spritesheet_file", String(100)),
    #: Set by `DELETE /v1/videos/{id}`: the task answers 404 everywhere and its files are gone.
    Column("deleted_at", UtcDateTime),
    #: The backend's checkpoint (e.g. the upstream job a relay resumes after a restart); opaque here.
    Column("backend_state", Text),
)

characters = Table(
    "characters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    #: JSON list of the storage keys of the key frames (PNG) taken from the uploaded clip.
    Column("frames", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key_id", String(40), ForeignKey("api_keys.id"), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("task_id", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("task_id", String(40)),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
    # A task is charged (or refunded) at most once, whatever retries or races happen.
    UniqueConstraint("task_id", "kind", name="uq_ledger_task_kind"),
)

#: A chat client's background request (a title, tags, ...) answered without a task or a charge.
background_requests = Table(
    "background_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False),
    Column("model", String(200), nullable=False),
    Column("client", String(40), nullable=False),
    Column("template", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_background_requests_key_created", "key_id", "created_at"),
)

#: Where a key's `video.completed` / `video.failed` events are sent (Standard Webhooks signing).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(40), ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    #: `whsec_<base64>`; shown to the client once, kept to sign every delivery.
    Column("secret", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    #: Why sending stopped (a 410, the retry schedule ran out, deleted); NULL while it is active.
    Column("disabled_reason", Text),
)

#: One event for one endpoint, written in the transaction that ends the task; its id is the `webhook-id`.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False, index=True),
    Column("task_id", String(40), nullable=False, index=True),
    Column("event_type", String(40), nullable=False),
    #: The exact body signed and sent, the same on every attempt.
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    #: `pending`, `delivered` or `failed`.
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    #: When the sender tries next (also its lease while it sends); NULL once delivered or failed.
    Column("next_attempt_at", UtcDateTime, index=True),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", UtcDateTime),
)
