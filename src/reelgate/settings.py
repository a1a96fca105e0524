"""Typed settings: `REELGATE_*` environment variables over an optional `reelgate.toml`.

The TOML file is `./reelgate.toml` unless `REELGATE_CONFIG` names another. Environment variables win
over the file, and explicit constructor arguments win over both. Model catalog overrides live in the
file's `[models."name"]` tables (see `catalog.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def config_file() -> Path:
    return Path(os.environ.get("REELGATE_CONFIG", "reelgate.toml"))


def default_data_dir() -> Path:
    """The per-user data folder (`~/.local/share/reelgate` on Linux), whatever the current directory."""
    return user_data_path("reelgate", appauthor=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELGATE_", extra="forbid")

    #: Database (SQLite), media and work files; a per-user folder so every command finds the same one.
    data_dir: Path = Field(default_factory=default_data_dir)
    #: SQLAlchemy URL; empty means the SQLite file `{data_dir}/reelgate.db`.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    #: Server processes `reelgate serve` runs on its one port, each a whole server (HTTP, worker slots,
    #: sweepers) sharing the database, so that the chat surface uses more than one core; 1 is one process.
    server_processes: int = Field(1, ge=1, le=64)
    #: Base of the links put into chat replies; empty means the request's own base URL.
    public_url: str = ""
    locale: Literal["zh", "en"] = "zh"
    #: How many tasks the embedded worker pool renders at once.
    worker_slots: int = Field(1, ge=1, le=64)
    #: Child processes the procedural backend renders in, so renders never hold the server's GIL (its
    #: event loop serves the streams); empty means one per worker slot, 0 renders in threads of this process.
    render_processes: int | None = Field(None, ge=0, le=64)
    #: The backends this process renders (catalog `backend` names); empty renders every one the catalog
    #: names. Tasks of the others stay queued for a process that runs them (`reelgate worker` on a GPU host).
    run_backends: list[str] = Field(default_factory=list)
    #: How often a process looks in the database for queued tasks it can run (another process accepted them).
    queue_poll_seconds: float = Field(2.0, gt=0, le=60)
    #: The longest silence a chat stream allows itself before it sends keep-alive content.
    keepalive_seconds: float = Field(8.0, gt=0, le=10)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    #: How often a task found `in_progress` after a crash is started again before it is failed.
    max_attempts: int = Field(2, ge=1, le=10)
    #: A task whose worker has not been heard from for this long is taken to belong to a dead process.
    lease_seconds: float = Field(30.0, ge=1)
    #: Default per-key limits (0 = none); a key's own limits win.
    rpm_limit: int = Field(0, ge=0)
    concurrency_limit: int = Field(0, ge=0)
    #: An identical request (same key, model, messages) while its task runs joins that task.
    resend_protection: bool = True
    #: Chat clients' background requests (a title, tags, follow-ups...) are answered at once, free;
    #: False refuses them with a 400 saying the model makes videos.
    background_answers: bool = True
    #: Chat replies end with an HTML `<video>` player block after the success block (a key may override).
    player_block: bool = False
    #: Days a video's files are kept, counted from when its task was accepted; 0 keeps them forever.
    retention_days: float = Field(0, ge=0)
    #: How often expired files are looked for and deleted (only while `retention_days` is set).
    retention_sweep_seconds: float = Field(3600, gt=0)
    #: `json` writes one JSON object per log line (ts, level, logger, message, task_id, key_id).
    log_format: Literal["json", "text"] = "text"
    #: The provider's rule: a task that failed to generate (a refused prompt, an upstream failure) stays
    #: charged; False refunds each such failure once. A failure the server caused is always refunded.
    charge_on_failure: bool = True
    #: Free bytes the media, work and database folders each need to take a new video; below it `/readyz`
    #: says not ready and new tasks are refused with 503 until space is freed. 0 turns the check off.
    min_free_bytes: int = Field(512 * 1024 * 1024, ge=0)
    #: How often files no task references (left by a killed process) and dead scratch folders are removed.
    orphan_sweep_seconds: float = Field(3600, gt=0)
    #: Bearer token of the `/admin` API; empty (the default) leaves the admin API unmounted.
    admin_token: SecretStr = SecretStr("")
    #: Largest reference image accepted (upload, data URI or fetched URL), in bytes.
    image_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    #: Reference images decoding at once in a process; each may hold a bitmap of up to ~160 MB briefly.
    image_decode_slots: int = Field(2, ge=1, le=64)
    #: Total time allowed to fetch a reference image URL, redirects included.
    image_fetch_timeout: float = Field(10.0, gt=0, le=120)
    #: Private hosts or CIDRs reference image URLs may reach (e.g. `["10.1.2.0/24", "images.internal"]`);
    #: everything private, loopback, link-local or multicast is refused otherwise.
    image_fetch_allow: list[str] = Field(default_factory=list)
    #: Largest uploaded source video (an edit's, an extension's or a character's clip), in bytes.
    video_upload_max_bytes: int = Field(200 * 1024 * 1024, ge=1024)
    #: Longest uploaded source video, in seconds (the longest video a model makes, an extension's 20 s).
    video_upload_max_seconds: float = Field(20.0, gt=0, le=600)
    #: Time allowed to read an uploaded video's header and check its first and last frames decode.
    video_upload_probe_timeout: float = Field(15.0, gt=0, le=300)
    #: Seconds between a webhook delivery's failed attempts (Standard Webhooks' schedule); once it runs out
    #: the delivery fails and its endpoint is disabled. Webhook URLs obey `image_fetch_allow` too.
    webhook_retry_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    #: How often each process looks for webhook deliveries that are due.
    webhook_poll_seconds: float = Field(1.0, gt=0)
    #: Total time one webhook attempt may take.
    webhook_timeout: float = Field(15.0, gt=0, le=120)
    #: Days a delivery that ended (delivered, or failed for good) stays visible to the operator; 0 keeps
    #: them forever. Pending deliveries are never pruned. Checked every `retention_sweep_seconds`.
    webhook_delivery_retention_days: float = Field(30, ge=0)
    #: Origins whose pages may call `/v1/` from a browser (CORS); `["*"]`, any, as OpenAI's API allows.
    cors_allow_origins: list[str] = Field(default_factory=lambda: ["*"])
    #: Where videos, thumbnails and reference images are kept: empty means `{data_dir}/media`;
    #: `s3://bucket/prefix` means an S3-compatible bucket (credentials and region from the standard
    #: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` variables). See docs/storage.md.
    storage_url: str = ""
    #: The S3 API's address for a store that is not AWS (MinIO, R2, OSS...); empty means AWS S3.
    s3_endpoint_url: str = ""
    #: `path` (`{endpoint}/{bucket}/{key}`) or `virtual` (`{bucket}.{endpoint}/{key}`, which OSS requires).
    s3_addressing: Literal["path", "virtual"] = "path"
    #: How `/cdn/` answers for files in a bucket: a 302 to a short-lived presigned URL, or `proxy`
    #: (reelgate streams the bytes, with Range support).
    cdn_mode: Literal["redirect", "proxy"] = "redirect"
    #: Base of the file links given to clients when a CDN serves the bucket (`{cdn_base_url}/{YYYYMMDD}/
    #: {name}.mp4`); empty links to this server's `/cdn/`.
    cdn_base_url: str = ""
    x264_preset: str = "veryfast"
    font_path: Path | None = None
    #: Catalog overrides: `{"model-name": {"seconds": 15, "price": "1.0", ...}}`.
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Upstream providers the relay backends send to, by name: `{"acme": {"base_url": ..., ...}}`
    #: (see `backends/relay/config.py`); checked when a catalog entry uses them.
    upstreams: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("admin_token")
    @classmethod
    def _no_weak_admin_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and (len(token) < 16 or token.strip() != token):
            raise ValueError("the admin token must be at least 16 characters, without surrounding spaces")
        return value

    @field_validator("public_url", "cdn_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value and not value.startswith("s3://"):
            raise ValueError("the storage URL is empty (the local media folder) or s3://bucket/prefix")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def resolved_database_url(self) -> str:
        """The URL with an async driver: `postgresql://` becomes `postgresql+asyncpg://`."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'reelgate.db'}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url.removeprefix(plain)
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
        return url

    @property
    def database_label(self) -> str:
        """The database for people to read: the SQLite file's path, or the URL without its password."""
        from sqlalchemy.engine import make_url

        url = make_url(self.resolved_database_url)
        if url.get_backend_name() == "sqlite":
            return str(url.database)
        return url.render_as_string(hide_password=True)
