"""Recognising background requests: every known template is caught, no real video prompt ever is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelgate.clients.answers import answer, conversation_of
from reelgate.clients.background import TEMPLATES, Form, recognise
from reelgate.prompt import parse_prompt
from tests.clients.requests import CASES, Case, Messages

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "video_prompts.txt"
REPLY = (
    '```json\n{\n  "prompt": "海边日落，海鸥飞过",\n  "orientation": "landscape",\n  "duration": 10\n}\n```\n\n'
    "> ID: `task_01jz0000000000000000000000`  \n> 排队中. 生成中.\n\n> 生成完成 ✅"
)
HISTORY: Messages = [
    {"role": "user", "content": "海边日落，海鸥飞过，横屏"},
    {"role": "assistant", "content": REPLY},
]


def _corpus() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_the_corpus_is_large_and_mixed() -> None:
    prompts = _corpus()
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in p) for p in prompts) >= 80
    assert any(p.lower().startswith("task") for p in prompts) and any(p.startswith("任务") for p in prompts)
    assert any(p.startswith("标题") for p in prompts) and any(p.startswith("生成") for p in prompts)
    assert any(p.startswith("{") for p in prompts)


@pytest.mark.parametrize("history", [[], HISTORY], ids=["first", "after-a-video"])
def test_no_video_prompt_is_taken_for_a_background_request(history: Messages) -> None:
    system = {"role": "system", "content": "You are a helpful assistant."}
    caught = [p for p in _corpus() if recognise([system, *history, {"role": "user", "content": p}]) is not None]
    assert caught == []
    for prompt in _corpus():
        assert parse_prompt(prompt).prompt


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.client}-{c.name}")
def test_each_client_template_is_recognised(case: Case) -> None:
    template = recognise(case.build(HISTORY))
    assert template is not None and (template.client, template.name) == (case.client, case.name)


def test_every_table_row_has_a_test_case() -> None:
    assert {(t.client, t.name) for t in TEMPLATES} == {(c.client, c.name) for c in CASES} | {
        ("lobechat", "title_zh"),
        ("librechat", "title_structured"),
    }


def _answer(client: str, name: str, history: Messages = HISTORY) -> str:
    case = next(c for c in CASES if (c.client, c.name) == (client, name))
    messages = case.build(history)
    template = recognise(messages)
    assert template is not None
    return answer(template, messages)


def test_open_webui_answers_are_the_json_it_parses() -> None:
    assert json.loads(_answer("open-webui", "title")) == {"title": "海边日落"}
    tags = json.loads(_answer("open-webui", "tags"))["tags"]
    assert "海边日落" in tags and len(tags) <= 6
    follow_ups = json.loads(_answer("open-webui", "follow_ups"))["follow_ups"]
    assert 3 <= len(follow_ups) <= 5 and "改成竖屏" in follow_ups and "改成下雪的夜晚" in follow_ups
    assert json.loads(_answer("open-webui", "queries")) == {"queries": []}
    assert json.loads(_answer("open-webui", "autocomplete")) == {"text": ""}
    assert json.loads(_answer("open-webui", "image_prompt")) == {"prompt": "海边日落，海鸥飞过"}
    assert _answer("open-webui", "emoji") == "🎬"


def test_plain_answers_name_the_video() -> None:
    for client, name in [
        ("nextchat", "topic_zh"),
        ("lobechat", "title"),
        ("chatbox", "title"),
        ("cherry-studio", "title"),
    ]:
        assert _answer(client, name) == "海边日落"
    assert "海边日落，海鸥飞过" in _answer("nextchat", "summary_zh")
    assert _answer("cherry-studio", "translate") == "海边日落"


def test_english_chats_get_english_answers() -> None:
    history = [{"role": "user", "content": "A red fox trotting through fresh snow at dawn, portrait"}]
    assert json.loads(_answer("open-webui", "title", history)) == {"title": "A red fox trotting through fresh"}
    follow_ups = json.loads(_answer("open-webui", "follow_ups", history))["follow_ups"]
    assert "Make it landscape" in follow_ups
    assert _answer("librechat", "title", history) == "A red fox trotting through fresh"


def test_the_video_is_read_from_the_reply_block() -> None:
    found = conversation_of(HISTORY)
    assert (found.prompt, found.orientation, found.duration) == ("海边日落，海鸥飞过", "landscape", 10)
    assert all(t.form in Form for t in TEMPLATES)
