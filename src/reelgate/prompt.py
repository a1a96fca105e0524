"""Chat messages to a video prompt: the last user message's text, its orientation, the ratio words gone.

>>> parse_prompt("中国街头吃西瓜,生成视频比例9:16")
PromptSpec(prompt='中国街头吃西瓜', orientation=<Orientation.PORTRAIT: 'portrait'>, explicit_orientation=True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reelgate.backends.base import Orientation
from reelgate.errors import InvalidRequest

MAX_PROMPT_CHARS = 4000
#: The most text a message may carry into prompt cleaning; ratio words and spaces come out, so a
#: little over the prompt limit is allowed, but never the whole request body.
MAX_INPUT_CHARS = 4 * MAX_PROMPT_CHARS

# Every pattern here runs on client text, so each is linear in its length: a whitespace run is
# consumed possessively (`\s*+`, nothing given back) and only from the run's first character
# (`(?<!\s)`), so a long run of spaces is read once, not once per position in it.
_RATIO_PORTRAIT = r"9\s*+[:：]\s*+16"
_RATIO_LANDSCAPE = r"16\s*+[:：]\s*+9"
_PORTRAIT = rf"{_RATIO_PORTRAIT}|竖屏|竖版|portrait|vertical"
_LANDSCAPE = rf"{_RATIO_LANDSCAPE}|横屏|横版|landscape|horizontal"
_ORIENTATION_RE = re.compile(rf"(?P<p>{_PORTRAIT})|(?P<l>{_LANDSCAPE})", re.IGNORECASE)

# A ratio phrase: optional lead-in words, the ratio token, optional trailing noun.
_LEAD_ZH = r"(?:(?:请|要|用)?(?:生成)?(?:视频|画面)?(?:比例|尺寸|格式)?(?:为|是|[:：])?(?<!\s)\s*+)"
_TAIL_ZH = r"(?:的)?(?:视频|画面|格式|比例|模式)?"
_ZH_TOKEN = rf"{_RATIO_PORTRAIT}|{_RATIO_LANDSCAPE}|竖屏|竖版|横屏|横版"
_ZH_PHRASE = re.compile(rf"{_LEAD_ZH}(?:{_ZH_TOKEN}){_TAIL_ZH}", re.IGNORECASE)
_EN_WORD = r"portrait|vertical|landscape|horizontal"
_EN_TAIL = r"(?:\s++(?:mode|video|orientation|format|aspect(?:\s++ratio)?))"
_EN_LEAD = r"(?:(?:in|as|with)\s++(?:an?\s++)?(?:aspect\s++ratio\s++)?)"
# English words only count as ratio phrases with a lead-in or a tail, or alone in their clause,
# so that "a portrait of my grandmother" keeps its words.
_EN_PHRASE = re.compile(
    rf"{_EN_LEAD}(?:{_EN_WORD}){_EN_TAIL}?|(?:{_EN_WORD}){_EN_TAIL}"
    rf"|(?:(?:aspect\s++)?ratio\s*+[:：]?+\s*+)(?:{_RATIO_PORTRAIT}|{_RATIO_LANDSCAPE})"
    rf"|(?:(?<=^)|(?<=[,，;；.。!！?？]))\s*+(?:{_EN_WORD})\s*+(?=$|[,，;；.。!！?？])",
    re.IGNORECASE,
)
_PUNCT = ",，。.;；:：!！?？、 \t\r\n"
_PUNCT_RUN = re.compile(r"(?<!\s)\s*+([,，。.;；:：!！?？、])[\s,，。.;；:：!！?？、]*+")
_BLANK_RUN = re.compile(r"[ \t]{2,}+")


_TASK_ID_LINE = re.compile(r"ID: `(task_[0-9a-z]{26})`")


@dataclass(frozen=True)
class PromptSpec:
    prompt: str
    orientation: Orientation
    #: Whether the text named the orientation; when not, `orientation` is the default (portrait).
    explicit_orientation: bool = False


def parse_messages(messages: object) -> PromptSpec:
    """The prompt in the last user message of an OpenAI `messages` list; InvalidRequest if none."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("`messages` must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest("Each message must be an object with a string `role`.", param=f"messages[{index}]")
    users = [(i, m) for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        raise InvalidRequest("`messages` must contain a user message.", param="messages")
    index, message = users[-1]
    return parse_prompt(message_text(message.get("content"), f"messages[{index}].content"))


def last_user_images(messages: list[Any]) -> list[str]:
    """The image URLs (http(s) or data URIs) of the last user message's `image_url` parts.

    Call after `parse_messages`, which has checked the messages' shape.
    """
    user = [m for m in messages if m["role"] == "user"][-1]
    content = user.get("content")
    if not isinstance(content, list):
        return []
    urls = []
    for index, part in enumerate(content):
        if part["type"] != "image_url":
            continue
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                "An image_url content part needs `image_url.url`, an http(s) URL or a data URI.",
                param=f"messages[{messages.index(user)}].content[{index}]",
            )
        urls.append(url)
    return urls


#: "延长 8 秒" / "extend by 8 seconds" / "extend it 8s": a conversation asking to continue its video.
_EXTEND = re.compile(
    r"^\s*(?:再?延长|延伸|续写)\s*(\d+)\s*秒[\s,，。.!！]*(.*)$"
    r"|^\s*extend(?:\s+it)?(?:\s+by)?\s+(\d+)\s*(?:s|secs?|seconds?)\b[\s,.!;:]*(.*)$",
    re.IGNORECASE | re.DOTALL,
)


def extension_ask(prompt: str) -> tuple[int, str] | None:
    """The seconds a chat message asks its video to be extended by, and what else it says; None if it
    does not ask that.

    >>> extension_ask("延长 8 秒"), extension_ask("Extend by 4 seconds, into the night"), extension_ask("下雪")
    ((8, ''), (4, 'into the night'), None)
    """
    found = _EXTEND.match(prompt)
    if found is None:
        return None
    seconds, rest = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return int(seconds), rest.strip()


def continued_task_id(messages: list[Any]) -> str | None:
    """The task of the latest assistant reply that carries a task ID line, if any ("连续修改").

    A conversation that goes on after a video reply asks to change that video: the last user message
    is then a remix instruction.
    """
    for message in reversed(messages):
        if message["role"] != "assistant":
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else _joined_text(content)
        found = _TASK_ID_LINE.findall(text)
        if found:
            return str(found[-1])
    return None


def _joined_text(content: object) -> str:
    if not isinstance(content, list):
        return ""
    return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")


def message_text(content: object, param: str) -> str:
    """The text of a message's `content`: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_part_text(part, f"{param}[{i}]") for i, part in enumerate(content)).strip()
    raise InvalidRequest("Message content must be a string or an array of content parts.", param=param)


def _part_text(part: Any, param: str) -> str:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequest("Each content part must be an object with a string `type`.", param=param)
    if part["type"] != "text":
        return ""
    if not isinstance(part.get("text"), str):
        raise InvalidRequest("A text content part needs a string `text`.", param=param)
    return str(part["text"])


def parse_prompt(text: str) -> PromptSpec:
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="messages")
    orientation = detect_orientation(text)
    explicit = _ORIENTATION_RE.search(text) is not None
    prompt = clean_prompt(text)
    if not prompt:
        raise InvalidRequest(
            "The prompt is empty: describe the video to generate.", param="messages", code="empty_prompt"
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="messages")
    return PromptSpec(prompt, orientation, explicit)


def detect_orientation(text: str) -> Orientation:
    """The last orientation the text names (a user who corrects themselves means the later one)."""
    matches = list(_ORIENTATION_RE.finditer(text))
    if not matches:
        return Orientation.PORTRAIT
    return Orientation.PORTRAIT if matches[-1].group("p") else Orientation.LANDSCAPE


def clean_prompt(text: str) -> str:
    """The text without its ratio phrases and the punctuation they leave dangling."""
    text = _EN_PHRASE.sub(" ", text)
    text = _ZH_PHRASE.sub(" ", text)
    text = _PUNCT_RUN.sub(_keep_first_mark, text)
    text = _BLANK_RUN.sub(" ", text)
    return text.strip(_PUNCT)


def _keep_first_mark(match: re.Match[str]) -> str:
    mark = match.group(1)
    return mark + " " if mark in ",.;:!?" else mark
