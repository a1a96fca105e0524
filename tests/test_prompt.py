import pytest

from reelgate.backends.base import Orientation
from reelgate.errors import InvalidRequest
from reelgate.prompt import parse_messages, parse_prompt

P, L = Orientation.PORTRAIT, Orientation.LANDSCAPE


@pytest.mark.parametrize(
    ("text", "prompt", "orientation"),
    [
        ("中国街头吃西瓜,生成视频比例9:16", "中国街头吃西瓜", P),
        ("中国街头吃西瓜，生成视频比例9：16", "中国街头吃西瓜", P),
        ("横屏，一只猫在海边奔跑", "一只猫在海边奔跑", L),
        ("一只猫, 竖屏, 在跳舞", "一只猫, 在跳舞", P),
        ("请生成竖版视频：城市夜景", "城市夜景", P),
        ("夕阳下的海滩 16:9", "夕阳下的海滩", L),
        ("海边的灯塔，横版", "海边的灯塔", L),
        ("A cat surfing, vertical video", "A cat surfing", P),
        ("A dog in landscape mode running on the beach", "A dog running on the beach", L),
        ("red car, aspect ratio 16:9", "red car", L),
        ("Sunrise over mountains, horizontal", "Sunrise over mountains", L),
        ("a portrait of my grandmother", "a portrait of my grandmother", P),
        ("一只熊猫吃竹子", "一只熊猫吃竹子", P),
        ("横屏 然后 竖屏: 小狗", "然后: 小狗", P),
    ],
)
def test_parse_prompt(text: str, prompt: str, orientation: Orientation) -> None:
    spec = parse_prompt(text)
    assert (spec.prompt, spec.orientation) == (prompt, orientation)


@pytest.mark.parametrize("text", ["", "   ", "生成视频比例9:16", "横屏", "，。16:9！", "landscape"])
def test_empty_prompt_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_prompt(text)
    assert info.value.param == "messages"


def test_last_user_message_and_text_parts() -> None:
    messages = [
        {"role": "system", "content": "you make videos"},
        {"role": "user", "content": "first idea"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "一只猫"}, {"type": "text", "text": "横屏"}]},
    ]
    spec = parse_messages(messages)
    assert spec.prompt == "一只猫"
    assert spec.orientation is L


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (None, "messages"),
        ([], "messages"),
        ("hello", "messages"),
        ([{"role": "system", "content": "x"}], "messages"),
        (["user: hi"], "messages[0]"),
        ([{"content": "hi"}], "messages[0]"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        ([{"role": "user", "content": {"text": "hi"}}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "text", "text": 5}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": ["hi"]}], "messages[0].content[0]"),
    ],
)
def test_malformed_messages(messages: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_messages(messages)
    assert info.value.param == param
