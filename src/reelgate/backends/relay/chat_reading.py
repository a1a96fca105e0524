"""Reading an upstream's chat stream for what reelgate needs: job id, raw-data link, progress, result.

The seed provider's markdown (joined `delta.content`):

    > ID: `task_01k...`
    > [数据预览](https://…/web/task_01k…) | [原始数据](https://…/source/task_01k…)
    > 🏃 进度 42..54..67..
    > 生成完成 ✅                       (or: > 生成失败 ❌ reason)
    ![https://…/x.webp](https://…/x.webp)
    [在线播放▶️](https://…/y.mp4)

sora2api's: progress in `reasoning_content` ("**Video Generation Progress**: 40% (processing)"), the
result as "```html\\n<video src='https://…/x.mp4' controls></video>\\n```" and in `delta.output[].url`.
A line that is not JSON is skipped, as is any chunk without choices. The echoed ```json block of the
request is not read: a prompt may say anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from reelgate.backends.relay.faults import clip, message_of

_ID = re.compile(r"ID:\s*`([^`\s]+)`")
# Upstream text: every pattern is linear in it (a label or URL stops at the next bracket, a tag at the next `<`).
_RAW_LINK = re.compile(r"\[(?:原始数据|Raw data)\]\((https?://[^\s()\[\]]++)\)")
_SOURCE_LINK = re.compile(r"\]\((https?://[^\s()\[\]]+/source/[^\s()\[\]/]++)\)")
_PROGRESS_MARK = re.compile(r"进度|[Pp]rogress")
_NUMBER = re.compile(r"\d{1,3}")
_PERCENT = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%")
_VIDEO_TAG = re.compile(r"<(?:video|source)\b[^<>]*?\bsrc\s*=\s*['\"]([^'\"]+)['\"]", re.IGNORECASE)
_POSTER = re.compile(r"<video\b[^<>]*?\bposter\s*=\s*['\"]([^'\"]+)['\"]", re.IGNORECASE)
_IMAGE = re.compile(r"!\[[^\[\]]*+\]\((https?://[^\s()\[\]]++)\)")
_LINK = re.compile(r"(?<!!)\[([^\[\]]*+)\]\((https?://[^\s()\[\]]++)\)")
_FAILED = re.compile(r"(?:生成失败\s*❌?|[Ff]ailed\s*❌)\s*[:：]?\s*([^\n]*)")
#: The echoed request (prompt included) says nothing about the job; a prompt may well say "进度" or "failed".
_JSON_BLOCK = re.compile(r"```json.*?(?:```|\Z)", re.DOTALL)
_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")
_PLAY_WORDS = ("播放", "下载", "play", "download", "video")


@dataclass
class ChatReading:
    """What an upstream chat stream has said so far."""

    content: str = ""
    reasoning: str = ""
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    ended: bool = False

    def feed(self, line: str) -> None:
        """Take one line of the stream (`data: {...}`, `data: [DONE]`, or anything else)."""
        data = line[len("data:") :].strip() if line.startswith("data:") else line.strip()
        if data == "[DONE]":
            self.ended = True
            return
        try:
            chunk = json.loads(data) if data.startswith("{") else None
        except ValueError:
            return
        if isinstance(chunk, dict):
            self.take(chunk)

    def take(self, chunk: dict[str, Any]) -> None:
        """Take one decoded chunk (or a whole non-streamed completion)."""
        if chunk.get("error"):
            self.error = clip(message_of(chunk["error"]) or "The upstream reported an error.")
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, dict):
                self._take_delta(delta)
            if choice.get("finish_reason"):
                self.ended = True

    def _take_delta(self, delta: dict[str, Any]) -> None:
        self.content += _text(delta.get("content"))
        self.reasoning += _text(delta.get("reasoning_content"))
        for item in delta.get("output") or ():
            if isinstance(item, dict) and isinstance(item.get("url"), str) and item.get("type", "video") == "video":
                self.outputs.append(item["url"])

    @property
    def prose(self) -> str:
        """The content without the echoed request."""
        return _JSON_BLOCK.sub("", self.content)

    @property
    def job_id(self) -> str | None:
        match = _ID.search(self.prose)
        return match.group(1) if match else None

    @property
    def follow_url(self) -> str | None:
        """The upstream's raw-data link for the job (a JSON document to poll), if it gave one."""
        prose = self.prose
        match = _RAW_LINK.search(prose) or _SOURCE_LINK.search(prose)
        return match.group(1) if match else None

    @property
    def progress(self) -> int | None:
        found = [_marked_progress(self.prose), _marked_progress(self.reasoning), _last_percent(self.reasoning)]
        numbers = [value for value in found if value is not None]
        return max(numbers) if numbers else None

    @property
    def video_url(self) -> str | None:
        if self.outputs:
            return self.outputs[-1]
        prose = self.prose
        tags = _VIDEO_TAG.findall(prose)
        if tags:
            return str(tags[-1])
        links = [url for label, url in _LINK.findall(prose) if _is_video_link(label, url)]
        return links[-1] if links else None

    @property
    def thumbnail_url(self) -> str | None:
        images = _IMAGE.findall(self.prose) or _POSTER.findall(self.prose)
        return str(images[-1]) if images else None

    @property
    def failure(self) -> str | None:
        """The upstream's reason when it says the video failed; None otherwise."""
        if self.error:
            return self.error
        matches = _FAILED.findall(self.prose)
        if not matches:
            return None
        return clip(matches[-1].strip()) or "The upstream could not generate this video."


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _marked_progress(text: str) -> int | None:
    """The last figure on the last line that names progress: `🏃 进度 42..54..67..` -> 67."""
    marks = list(_PROGRESS_MARK.finditer(text))
    if not marks:
        return None
    line = text[marks[-1].end() :].split("\n", 1)[0]
    figures = [int(n) for n in _NUMBER.findall(line) if int(n) <= 100]
    return figures[-1] if figures else None


def _last_percent(text: str) -> int | None:
    figures = [int(n) for n in _PERCENT.findall(text) if int(n) <= 100]
    return figures[-1] if figures else None


def _is_video_link(label: str, url: str) -> bool:
    path = urlsplit(url).path.lower()
    if "/web/" in path or "/source/" in path:
        return False
    return path.endswith(_VIDEO_SUFFIXES) or any(word in label.lower() for word in _PLAY_WORDS)
