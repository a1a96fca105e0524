"""Task snapshots -> the provider's markdown, piece by piece.

Joined, the pieces of one stream read like the provider's 返回示例:

    ```json
    {"prompt": ..., "orientation": "portrait", "duration": 15}
    ```

    > ID: `task_...`
    > [数据预览](.../web/task_...) | [原始数据](.../source/task_...)
    > 排队中... 生成中.

    > 🏃 进度 42..54..67..

    > 生成完成 ✅
    > sid: `s_...`

    ![thumbnail](...webp)
    [在线播放▶️](...mp4)

`ChatMarkdown` holds one stream's state; `advance` returns the pieces that move the text from what
was already sent to the given snapshot, filling in phases a fast task skipped, so every stream has the
same shape. `keepalive` is content too (a dot), because the provider's client prints any line that is
not JSON and so the stream may carry nothing but `data:` lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from html import escape

from reelgate.tasks.models import Task, TaskStatus

BR = "  \n"  # a markdown line break inside a block quote, as the provider writes it


@dataclass(frozen=True)
class Wording:
    preview: str
    raw: str
    queued: str
    generating: str
    progress: str
    done: str
    failed: str
    play: str
    #: The stream cannot follow the task any further (the database went away under it); the link follows.
    still_running: str


ZH = Wording(
    "数据预览",
    "原始数据",
    "排队中",
    "生成中",
    "🏃 进度",
    "生成完成 ✅",
    "生成失败 ❌",
    "在线播放▶️",
    "任务仍在生成中 ⏳ 本次连接无法继续显示进度，结果请稍后查看",
)
EN = Wording(
    "Preview",
    "Raw data",
    "Queued",
    "Generating",
    "🏃 Progress",
    "Done ✅",
    "Failed ❌",
    "Play ▶️",
    "Still generating ⏳ this reply cannot follow it any further; see the result later at",
)


@dataclass(frozen=True)
class Links:
    """Where a task's pages and files are, as the client will see them."""

    base_url: str
    #: Where a CDN in front of the bucket serves the files (`REELGATE_CDN_BASE_URL`); empty: this server.
    cdn_url: str = ""

    def page(self, task_id: str) -> str:
        return f"{self.base_url}/web/{task_id}"

    def source(self, task_id: str) -> str:
        return f"{self.base_url}/source/{task_id}"

    def file(self, key: str) -> str:
        return f"{self.cdn_url}/{key}" if self.cdn_url else f"{self.base_url}/cdn/{key}"


_encode = json.JSONEncoder(ensure_ascii=False).encode


def indented_json(block: dict[str, object]) -> str:
    """`json.dumps(block, ensure_ascii=False, indent=2)` for a flat object of scalars, in under half the time:
    an indent makes `json` encode in Python, where each value alone goes through its C encoder."""
    lines = ",\n".join(f"  {_encode(name)}: {_encode(value)}" for name, value in block.items())
    return "{\n" + lines + "\n}"


class Phase(IntEnum):
    QUEUED = 1
    GENERATING = 2
    PROGRESS = 3
    ENDED = 4


#: A new progress figure is written when progress rose by at least this much (or reached 100).
PROGRESS_STEP = 5


@dataclass
class ChatMarkdown:
    links: Links
    wording: Wording = ZH
    phase: Phase = Phase.QUEUED
    shown_progress: int = 0
    #: End the success block with an HTML `<video>` player (opt-in: the provider's text has none).
    player: bool = False

    def header(self, task: Task) -> list[str]:
        """The JSON block and the ID lines: sent before any generation work."""
        block: dict[str, object] = {
            "prompt": task.prompt,
            "orientation": task.orientation.value,
            "duration": task.seconds,
        }
        if task.remixed_from:
            block["remix_of"] = task.remixed_from
        if task.extended_from:
            block["extend_of"] = task.extended_from
        if task.input_image:
            block["image"] = True
        w, tid = self.wording, task.id
        return [
            f"```json\n{indented_json(block)}\n```\n\n",
            f"> ID: `{tid}`{BR}> [{w.preview}]({self.links.page(tid)}) | [{w.raw}]({self.links.source(tid)}){BR}"
            f"> {w.queued}.",
        ]

    def advance(self, task: Task) -> list[str]:
        """Pieces that bring the text up to `task`; empty when nothing visible changed."""
        if self.phase is Phase.ENDED:
            return []
        pieces: list[str] = []
        if task.status is not TaskStatus.QUEUED:
            pieces += self._to_generating()
        if task.status is TaskStatus.IN_PROGRESS:
            pieces += self._progress(task.progress, final=False)
        elif task.status is TaskStatus.COMPLETED:
            pieces += [*self._progress(100, final=True), self._completed(task)]
        elif task.status is TaskStatus.FAILED:
            pieces.append(self._failed(task))
        return pieces

    def interrupted(self, task_id: str) -> str:
        """The last piece of a stream that cannot go on while the task still runs: where to look later."""
        self.phase = Phase.ENDED
        w = self.wording
        return f"\n\n> {w.still_running} [{w.raw}]({self.links.source(task_id)})"

    def keepalive(self) -> str:
        return "" if self.phase is Phase.ENDED else "."

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def _to_generating(self) -> list[str]:
        if self.phase is not Phase.QUEUED:
            return []
        self.phase = Phase.GENERATING
        return [f" {self.wording.generating}."]

    def _progress(self, progress: int, *, final: bool) -> list[str]:
        rise = progress - self.shown_progress
        if progress <= 0 or rise <= 0 or (rise < PROGRESS_STEP and progress < 100 and not final):
            return []
        opening = f"\n\n> {self.wording.progress} " if self.phase is Phase.GENERATING else ""
        self.phase = Phase.PROGRESS
        self.shown_progress = progress
        return [f"{opening}{progress}.."]

    def _completed(self, task: Task) -> str:
        self.phase = Phase.ENDED
        thumb = self.links.file(task.thumbnail_file or "")
        video = self.links.file(task.video_file or "")
        block = (
            f"\n\n> {self.wording.done}{BR}> sid: `{task.share_id}`\n\n"
            f"![{thumb}]({thumb})\n[{self.wording.play}]({video})"
        )
        return block + player_block(thumb, video) if self.player else block

    def _failed(self, task: Task) -> str:
        self.phase = Phase.ENDED
        reason = task.error.message if task.error else ""
        return f"\n\n> {self.wording.failed} {reason}".rstrip()


def player_block(poster: str, video: str) -> str:
    """A raw HTML player that chat clients render: Open WebUI and Cherry Studio show a `<video>` in a `<div>`.

    The URL is also the element's text: Open WebUI (0.12) plays the text between `<video>` and
    `</video>` and shows the block as plain text without it; browsers show that text only where video
    is unsupported. The MP4 link ends in `.mp4` with no query string, so NextChat (which turns such
    links into players) and the success block's own link keep working.
    """
    attributes = f'controls preload="metadata" poster="{escape(poster)}" src="{escape(video)}"'
    return f"\n\n<div><video {attributes}>{escape(video)}</video></div>"
