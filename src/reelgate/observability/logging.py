"""Log lines as text or JSON, carrying the task and key they concern.

`log_context(task_id=..., key_id=...)` binds fields for everything logged inside it (the worker binds
them while it runs a task; the HTTP middleware opens a scope per request and `bind` adds the key id after
authentication). A field passed with `extra=` wins over the context. Key secrets never reach a log
line: only key ids are bound, and anything shaped like a secret is masked before a line is written.

    {"ts": "2026-11-24T08:00:00.123Z", "level": "info", "logger": "reelgate.workers.runner",
     "message": "task task_01k...: completed", "task_id": "task_01k...", "key_id": "key_01k..."}

A server of several processes (`reelgate serve --processes N`) also names the process of each line: its
pid, after the level in text and as `"pid"` in JSON.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from reelgate.settings import Settings

LogFormat = Literal["json", "text"]

#: The context fields a line may carry.
FIELDS = ("task_id", "key_id")

_fields: ContextVar[dict[str, str] | None] = ContextVar("reelgate_log_fields", default=None)

_SECRET = re.compile(r"sk-[A-Za-z0-9_-]{12,}")


def redact(text: str) -> str:
    """Mask anything shaped like an API key: `redact("key sk-0123456789abcdef")` -> `"key sk-***"`."""
    return _SECRET.sub("sk-***", text)


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Bind `fields` to every line logged inside the block (in this task and tasks it starts)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: str) -> None:
    """Add fields to the current scope until it ends (a request's scope ends with its response)."""
    _fields.set({**(_fields.get() or {}), **fields})


def context_fields(record: logging.LogRecord) -> dict[str, str]:
    """The record's own `extra=` fields over the context's, for the names in `FIELDS`."""
    bound = _fields.get() or {}
    values = {name: getattr(record, name, None) or bound.get(name) for name in FIELDS}
    return {name: str(value) for name, value in values.items() if value}


class JsonFormatter(logging.Formatter):
    def __init__(self, with_pid: bool = False) -> None:
        super().__init__()
        self._with_pid = with_pid

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context_fields(record),
        }
        if self._with_pid:
            entry["pid"] = record.process
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, with_pid: bool = False) -> None:
        process = " [%(process)d]" if with_pid else ""
        super().__init__(f"%(asctime)s %(levelname)s{process} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = "".join(f" {name}={value}" for name, value in context_fields(record).items())
        return redact(line + fields)


def build_handler(log_format: LogFormat, stream: TextIO | None = None, with_pid: bool = False) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(with_pid) if log_format == "json" else TextFormatter(with_pid))
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's lines, INFO and up, to stderr (or `stream`) in `settings.log_format`.

    Replaces a handler an earlier call installed and leaves other handlers alone; returns the handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "reelgate", False)]:
        root.removeHandler(old)
    handler = build_handler(settings.log_format, stream, with_pid=settings.server_processes > 1)
    handler.reelgate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler
