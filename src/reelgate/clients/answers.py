"""Answers to background requests, made from the conversation's video and what reelgate can do next.

The video is read back from reelgate's own earlier reply (its JSON block: prompt, orientation,
duration), wherever the client put that reply: in the messages, or quoted inside the template's chat
history. Without one, the user's own message stands in.

>>> Conversation("海边日落，海鸥飞过", "landscape", 10).title
'海边日落'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reelgate.clients.background import Form, Template, instruction_text, json_answer, recognise, text_of
from reelgate.prompt import clean_prompt, detect_orientation

#: How reelgate's reply block starts (`render/chat_markdown.py` writes it with indent=2).
HEADER_START = '{\n  "prompt": '
#: How a filled chat history quotes the user (Open WebUI `USER: ...`, others `user: ...`), lower-cased.
HISTORY_USER = "user: "
CLAUSE_MARKS = ",，。.;；!！?？、\n"
MAX_TITLE_CHARS = 24
MAX_TITLE_WORDS = 6


@dataclass(frozen=True)
class Conversation:
    """The video a chat is about; `prompt` may be empty when nothing could be found."""

    prompt: str
    orientation: str = "portrait"
    duration: int | None = None

    @property
    def chinese(self) -> bool:
        return any("\u4e00" <= char <= "\u9fff" for char in self.prompt)

    @property
    def clauses(self) -> list[str]:
        parts: list[str] = []
        current: list[str] = []
        for char in self.prompt:
            if char in CLAUSE_MARKS:
                parts.append("".join(current).strip())
                current = []
            else:
                current.append(char)
        parts.append("".join(current).strip())
        return [part for part in parts if part]

    @property
    def title(self) -> str:
        first = self.clauses[0] if self.clauses else ("视频" if self.chinese else "Video")
        if self.chinese:
            return first[:MAX_TITLE_CHARS]
        return " ".join(first.split()[:MAX_TITLE_WORDS])


def answer(template: Template, messages: list[Any]) -> str:
    """The content of the reply to a background request, in the form its client parses."""
    conversation = conversation_of(messages)
    return _ANSWERS[template.form](conversation, messages)


def conversation_of(messages: list[Any]) -> Conversation:
    texts = [text_of(m.get("content")) for m in messages if isinstance(m, dict)]
    for text in reversed(texts):
        found = _from_header(text)
        if found is not None:
            return found
    return _user_prompt(messages)


def _from_header(text: str) -> Conversation | None:
    start = text.rfind(HEADER_START)
    if start < 0:
        return None
    try:
        block, _ = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    if not isinstance(block, dict) or not isinstance(block.get("prompt"), str):
        return None
    duration = block.get("duration")
    return Conversation(
        block["prompt"], str(block.get("orientation", "portrait")), duration if isinstance(duration, int) else None
    )


def _user_prompt(messages: list[Any]) -> Conversation:
    """The user's own words: the first user message that is not a template, or a history's `user:` line."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user" and recognise([message]) is None:
            return _from_words(text_of(message.get("content")))
    for line in instruction_text(messages).splitlines():
        if line[: len(HISTORY_USER)].lower() == HISTORY_USER:
            return _from_words(line[len(HISTORY_USER) :])
    return Conversation("")


def _from_words(text: str) -> Conversation:
    return Conversation(clean_prompt(text), detect_orientation(text).value)


def _tags(c: Conversation) -> list[str]:
    tags = ["视频" if c.chinese else "Video"]
    for clause in c.clauses[:2]:
        tag = clause[:12] if c.chinese else " ".join(clause.split()[:3])
        if tag not in tags:
            tags.append(tag)
    return tags


def follow_ups(c: Conversation) -> list[str]:
    """What the user can really ask next in this chat: a remix, the other orientation, a new scene."""
    other = "landscape" if c.orientation == "portrait" else "portrait"
    if c.chinese:
        turn = "改成横屏" if other == "landscape" else "改成竖屏"
        return ["改成下雪的夜晚", turn, "镜头慢慢推近，加上电影感的光影", "换成黄昏时分的暖色调"]
    turn = "Make it landscape" if other == "landscape" else "Make it portrait"
    return [
        "Change it to a snowy night",
        turn,
        "Slowly push the camera in, with cinematic light",
        "Make it golden hour",
    ]


def _summary(c: Conversation) -> str:
    if c.chinese:
        return f"用户在生成视频：{c.prompt or '（未描述）'}"
    return f"The user is making a video: {c.prompt or '(not described)'}"


def _translate_input(messages: list[Any]) -> str:
    text = instruction_text(messages)
    end = text.rfind("</translate_input>")
    start = text.rfind("<translate_input>", 0, max(end, 0))
    if start < 0 or end < start:
        return text
    return text[start + len("<translate_input>") : end].strip()


_ANSWERS = {
    Form.TITLE_JSON: lambda c, m: json_answer("title", c.title),
    Form.TAGS_JSON: lambda c, m: json_answer("tags", _tags(c)),
    Form.FOLLOW_UPS_JSON: lambda c, m: json_answer("follow_ups", follow_ups(c)),
    Form.QUERIES_JSON: lambda c, m: json_answer("queries", []),
    Form.TEXT_JSON: lambda c, m: json_answer("text", ""),
    Form.PROMPT_JSON: lambda c, m: json_answer("prompt", c.prompt),
    Form.EMOJI: lambda c, m: "🎬",
    Form.TITLE: lambda c, m: c.title,
    Form.SUMMARY: lambda c, m: _summary(c),
    Form.ECHO: lambda c, m: _translate_input(m),
}
