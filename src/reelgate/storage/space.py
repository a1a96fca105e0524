"""Free disk space: whether the folders a video is written to can take another one."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path


def short_of_space(folders: Iterable[Path], min_free: int) -> list[Path]:
    """The folders whose file system has fewer than `min_free` bytes free (none when `min_free` is 0).

    A folder not created yet is measured where it will be created: its nearest existing parent.
    """
    if min_free <= 0:
        return []
    return [folder for folder in folders if _free(folder) < min_free]


def _free(folder: Path) -> int:
    # Every admission asks: the folder itself first, one system call (resolving it cost more than the rest).
    try:
        return shutil.disk_usage(folder).free
    except FileNotFoundError:
        return shutil.disk_usage(_existing(folder)).free


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
