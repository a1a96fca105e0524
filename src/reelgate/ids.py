"""Identifiers that clients see: task IDs, share IDs and file names."""

from __future__ import annotations

import re
import secrets

from ulid import ULID

TASK_ID_RE = re.compile(r"^task_[0-9a-hjkmnp-tv-z]{26}$")


def new_task_id() -> str:
    """`task_` + lower-case ULID, sortable by creation time: `task_01k8sxz17gewz8kac074xz4crh`."""
    return f"task_{str(ULID()).lower()}"


def new_share_id() -> str:
    """`s_` + 32 hex digits."""
    return f"s_{secrets.token_hex(16)}"


def new_file_name(extension: str) -> str:
    """32 hex digits and an extension: `5aad43fd4008074d2074b13d8dd4c9ab.mp4`."""
    return f"{secrets.token_hex(16)}.{extension}"


def is_task_id(value: str) -> bool:
    return TASK_ID_RE.match(value) is not None
