"""Every text pass over client (or upstream) text is linear: 1 MiB of the worst shapes finishes at once.

Before the fix a run of 40,000 spaces took ~30 s in `clean_prompt` (quadratic); at 1 MiB it would take
days, so each case here would exceed the per-test timeout.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelgate.backends.procedural.script import clauses
from reelgate.backends.relay.chat_reading import ChatReading
from reelgate.backends.relay.documents import percent
from reelgate.errors import InvalidRequest
from reelgate.observability.logging import redact
from reelgate.prompt import (
    MAX_INPUT_CHARS,
    MAX_PROMPT_CHARS,
    clean_prompt,
    continued_task_id,
    detect_orientation,
    parse_messages,
    parse_prompt,
)

BODY_LIMIT = 1_048_576


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    return head + unit * ((BODY_LIMIT - len(head) - len(tail)) // len(unit)) + tail


#: Shapes that made backtracking patterns quadratic: long runs a pattern starts on and then gives up.
PATHOLOGICAL = {
    "spaces": _fill(" ", "a", "b"),
    "tabs and newlines": _fill(" \t\n", "a", "b"),
    "punctuation": _fill(",，。 ;：!？、"),
    "ratio-like digits": _fill("9 ", "ratio", "x"),
    "ratio lead then spaces": _fill(" ", "aspect ratio", "x"),
    "colons between digits": _fill("9:1 16：", "", "x"),
    "mixed CJK": _fill("视频比例 为 横屏的 ，竖版模式 in an "),
    "lead words, no token": _fill(" ", "请生成视频比例为", "猫"),
    "english lead": _fill(" ", "in an", "x"),
    "clause word then spaces": _fill(" ", ", portrait", "x"),
    "brackets": _fill("[![]("),
    "tags": _fill("<video <source src="),
    "links": _fill("](http://a/source/"),
    "percent": _fill("1.1", "", " "),
    "secrets": _fill("sk-aaaaaaaaaaa "),
}

PARSERS: dict[str, Callable[[str], object]] = {
    "clean_prompt": clean_prompt,
    "detect_orientation": detect_orientation,
    "continued_task_id": lambda text: continued_task_id([{"role": "assistant", "content": text}]),
    "clauses": clauses,
    "percent": percent,
    "redact": redact,
    "upstream chat": lambda text: _read_upstream(text),
}


def _read_upstream(text: str) -> tuple[object, ...]:
    reading = ChatReading(content=text, reasoning=text)
    return reading.job_id, reading.follow_url, reading.progress, reading.video_url, reading.thumbnail_url


@pytest.mark.parametrize("parser", PARSERS.values(), ids=list(PARSERS))
@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=list(PATHOLOGICAL))
def test_parsers_are_linear_at_the_body_limit(parser: Callable[[str], object], text: str) -> None:
    parser(text)


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=list(PATHOLOGICAL))
def test_a_prompt_longer_than_the_input_bound_is_refused_before_cleaning(text: str) -> None:
    with pytest.raises(InvalidRequest, match=f"longer than {MAX_PROMPT_CHARS}"):
        parse_messages([{"role": "user", "content": [{"type": "text", "text": text}]}])


def test_spaces_that_clean_away_still_make_a_prompt_within_the_bound() -> None:
    text = "a" + " " * (MAX_INPUT_CHARS - 2) + "b"
    assert parse_prompt(text).prompt == "a b"


_ATOMS = st.sampled_from(
    [
        " ",
        "   ",
        "\t",
        "\n",
        ",",
        "，",
        "。",
        ".",
        ":",
        "：",
        "!",
        "？",
        "、",
        "9",
        "16",
        "9:16",
        "16：9",
        "比例",
        "生成",
        "视频",
        "为",
        "竖屏",
        "横版",
        "的",
        "模式",
        "in ",
        "as an ",
        "aspect ",
        "ratio",
        "portrait",
        "Landscape",
        "vertical",
        "mode",
        "video",
        "a",
        "cat",
        "猫",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ATOMS, max_size=40).map("".join))
def test_clean_prompt_leaves_no_ratio_and_no_dangling_marks(text: str) -> None:
    cleaned = clean_prompt(text)
    assert cleaned == cleaned.strip(",，。.;；:：!！?？、 \t\r\n")
    assert "  " not in cleaned and "9:16" not in cleaned
    assert detect_orientation(text) in ("portrait", "landscape")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_prompt_or_a_clear_refusal(text: str) -> None:
    try:
        spec = parse_prompt(text)
    except InvalidRequest as exc:
        assert exc.param == "messages"
    else:
        assert spec.prompt and len(spec.prompt) <= MAX_PROMPT_CHARS
