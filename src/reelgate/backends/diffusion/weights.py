"""Where a model's weights are: a local folder, or a hub id already in the local Hugging Face cache.

Nothing is downloaded, ever: GPU hosts are usually offline, and a request must never wait for a
multi-gigabyte download. A missing folder or an uncached id is a `WeightsNotFound` naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class WeightsNotFound(Exception):
    """The weights a catalog entry names are not on this machine."""


def resolve(weights: str, what: str = "weights") -> Path:
    """The local folder holding `weights`.

    `/models/wan`, `./wan` and `~/wan` are folders; `Wan-AI/Wan2.1-T2V-1.3B-Diffusers` is a folder
    if one has that name, else a hub id looked up in the local cache only.
    """
    path = Path(weights).expanduser()
    looks_like_path = weights.startswith(("/", ".", "~")) or not _HUB_ID.match(weights)
    if path.is_dir():
        return path
    if looks_like_path:
        raise WeightsNotFound(f"{what} folder {str(path)!r} does not exist (reelgate never downloads weights)")
    return _cached(weights, what)


def _cached(repo_id: str, what: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError as exc:
        cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        raise WeightsNotFound(
            f"{what} {repo_id!r}: no such folder, and not in the local Hugging Face cache ({cache}); "
            f"reelgate never downloads weights: fetch them first (`hf download {repo_id}`) or name a folder"
        ) from exc
