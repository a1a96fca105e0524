"""Chat clients' background requests: recognised by their published templates, answered at once for free.

Open WebUI, NextChat, LobeChat, LibreChat, Chatbox and Cherry Studio ask the chat's own model for a
title, tags, follow-up suggestions, search queries and the like, with a filled prompt template. To a
video model each would be a video and a charge; instead reelgate answers in the form that client
parses. `TEMPLATES` is the one table of what is recognised: a new client (or template) is one row.

Recognition is plain substring checks on the lower-cased instruction text (the system messages and the
last user message), so it stays linear in the request size. Every marker of a row must be present:
markers are phrases of the template's fixed wording, long and odd enough that no video prompt has them
all (`tests/fixtures/video_prompts.txt` holds the prompts that must keep making videos).

>>> recognise([{"role": "user", "content": "### Task: 1-3 broad tags categorizing ... <chat_history>"}]).name
'tags'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Form(StrEnum):
    """How the client reads the answer."""

    TITLE_JSON = "title_json"  #: `{"title": "..."}` (Open WebUI)
    TAGS_JSON = "tags_json"  #: `{"tags": [...]}` (Open WebUI)
    FOLLOW_UPS_JSON = "follow_ups_json"  #: `{"follow_ups": [...]}` (Open WebUI)
    QUERIES_JSON = "queries_json"  #: `{"queries": []}`: no web or knowledge search is needed (Open WebUI)
    TEXT_JSON = "text_json"  #: `{"text": ""}`: no autocompletion (Open WebUI)
    PROMPT_JSON = "prompt_json"  #: `{"prompt": "..."}`: the video prompt as an image prompt (Open WebUI)
    EMOJI = "emoji"  #: one emoji
    TITLE = "title"  #: a few plain words
    SUMMARY = "summary"  #: one plain sentence
    ECHO = "echo"  #: the text given to translate, unchanged (a video model does not translate)


@dataclass(frozen=True)
class Template:
    client: str
    name: str
    #: Lower-case phrases that must all occur in the instruction text.
    markers: tuple[str, ...]
    form: Form


#: Where each row comes from: Open WebUI `backend/open_webui/config.py` DEFAULT_*_PROMPT_TEMPLATE;
#: NextChat `app/locales/cn.ts`/`en.ts` Store.Prompt.Topic/Summarize; LobeChat
#: `packages/prompts/src/chains/summaryTitle.ts`; LibreChat's title instruction and
#: `@librechat/agents` createCompletionTitleRunnable; Chatbox `nameConversation`; Cherry Studio
#: `src/renderer/src/config/prompts.ts` SUMMARIZE_PROMPT and TRANSLATE_PROMPT.
def _row(client: str, name: str, form: Form, *markers: str) -> Template:
    return Template(client, name, markers, form)


#: Open WebUI's filled templates all begin `### Task:` and quote the chat in `<chat_history>`.
_OWUI = ("### task:", "<chat_history>")

TEMPLATES: tuple[Template, ...] = (
    _row("open-webui", "title", Form.TITLE_JSON, *_OWUI, '"title": "your concise title here"'),
    _row("open-webui", "tags", Form.TAGS_JSON, *_OWUI, "broad tags categorizing"),
    _row("open-webui", "follow_ups", Form.FOLLOW_UPS_JSON, *_OWUI, '"follow_ups"'),
    _row("open-webui", "queries", Form.QUERIES_JSON, *_OWUI, '"queries"'),
    _row("open-webui", "image_prompt", Form.PROMPT_JSON, *_OWUI, "image generation task"),
    _row("open-webui", "autocomplete", Form.TEXT_JSON, "you are an autocompletion system", "<text>"),
    _row("open-webui", "emoji", Form.EMOJI, "reflect the speaker's likely facial expression"),
    _row("nextchat", "topic_zh", Form.TITLE, "使用四到五个字直接返回这句话的简要主题"),
    _row("nextchat", "topic_en", Form.TITLE, "four to five word title summarizing our conversation"),
    _row("nextchat", "summary_zh", Form.SUMMARY, "简要总结一下", "用作后续的上下文提示 prompt"),
    _row("nextchat", "summary_en", Form.SUMMARY, "summarize the discussion briefly in 200 words or less"),
    _row("lobechat", "title", Form.TITLE, "you are a professional conversation summarizer", "maximum 10 words"),
    _row("lobechat", "title_zh", Form.TITLE, "你是一名擅长会话的助理", "总结为 10 个字以内的标题"),
    _row("librechat", "title", Form.TITLE, "5-word-or-less title for the conversation"),
    _row("librechat", "title_structured", Form.TITLE, "analyze this conversation and provide", "detected language"),
    _row("chatbox", "title", Form.TITLE, "based on the chat history, give this conversation a name"),
    _row("cherry-studio", "title", Form.TITLE, "summarize the user's conversation into a title"),
    _row("cherry-studio", "translate", Form.ECHO, "you are a translation expert", "<translate_input>"),
)


def recognise(messages: Any) -> Template | None:
    """The template a request's instruction text was filled from, or None for a real prompt."""
    text = instruction_text(messages).lower()
    if not text:
        return None
    for template in TEMPLATES:
        for marker in template.markers:
            if marker not in text:
                break
        else:
            return template
    return None


def instruction_text(messages: Any) -> str:
    """The system messages and the last user message, joined: where clients put a template."""
    if not isinstance(messages, list):
        return ""
    chosen = [m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    chosen += users[-1:]
    return "\n".join(text_of(m.get("content")) for m in chosen)


def text_of(content: Any) -> str:
    """A message's text, tolerant of any shape (a string, or text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def json_answer(key: str, value: object) -> str:
    return json.dumps({key: value}, ensure_ascii=False)
