import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from reelgate.backends.base import Orientation
from reelgate.render.chat_markdown import EN, ChatMarkdown, Links, indented_json
from reelgate.tasks.models import Task, TaskError, TaskStatus

TASK = Task(
    id="task_01k8sxz17gewz8kac074xz4crh",
    key_id="key_x",
    model="sora-2-hd-15s-chat",
    backend="procedural",
    status=TaskStatus.QUEUED,
    progress=0,
    prompt="中国街头吃西瓜",
    orientation=Orientation.PORTRAIT,
    seconds=15,
    size="1024x1792",
    fps=24,
    seed=1,
    price=1,
    created_at=datetime.now(UTC),
)
DONE = replace(
    TASK,
    status=TaskStatus.COMPLETED,
    progress=100,
    share_id="s_69030aec68108191a24f05b2089bcb59",
    video_file="20251030/181a1916dcfe0bb84cafed2427204c00.mp4",
    thumbnail_file="20251030/5aad43fd4008074d2074b13d8dd4c900.webp",
)


def _run(markdown: ChatMarkdown, *snapshots: Task) -> str:
    pieces = markdown.header(TASK)
    for snapshot in snapshots:
        pieces += markdown.advance(snapshot)
    return "".join(pieces)


def test_full_stream_reads_like_the_provider() -> None:
    markdown = ChatMarkdown(Links("https://v.example"))
    running = replace(TASK, status=TaskStatus.IN_PROGRESS)
    text = _run(
        markdown,
        running,
        replace(running, progress=42),
        replace(running, progress=44),  # too small a rise to print
        replace(running, progress=54),
        DONE,
    )
    assert text == (
        '```json\n{\n  "prompt": "中国街头吃西瓜",\n  "orientation": "portrait",\n  "duration": 15\n}\n```\n\n'
        "> ID: `task_01k8sxz17gewz8kac074xz4crh`  \n"
        "> [数据预览](https://v.example/web/task_01k8sxz17gewz8kac074xz4crh) | "
        "[原始数据](https://v.example/source/task_01k8sxz17gewz8kac074xz4crh)  \n"
        "> 排队中. 生成中.\n\n"
        "> 🏃 进度 42..54..100..\n\n"
        "> 生成完成 ✅  \n> sid: `s_69030aec68108191a24f05b2089bcb59`\n\n"
        "![https://v.example/cdn/20251030/5aad43fd4008074d2074b13d8dd4c900.webp]"
        "(https://v.example/cdn/20251030/5aad43fd4008074d2074b13d8dd4c900.webp)\n"
        "[在线播放▶️](https://v.example/cdn/20251030/181a1916dcfe0bb84cafed2427204c00.mp4)"
    )
    assert markdown.ended and markdown.advance(DONE) == [] and markdown.keepalive() == ""


def test_a_task_that_ends_unseen_still_shows_every_phase() -> None:
    text = _run(ChatMarkdown(Links("http://h")), DONE)
    assert text.index("排队中") < text.index("生成中") < text.index("进度 100..") < text.index("生成完成 ✅")


def test_failure_line_and_english() -> None:
    failed = replace(TASK, status=TaskStatus.FAILED, error=TaskError("generation_failed", "the GPU melted"))
    assert _run(ChatMarkdown(Links("http://h")), failed).endswith("生成中.\n\n> 生成失败 ❌ the GPU melted")
    english = _run(ChatMarkdown(Links("http://h"), EN), DONE)
    assert "[Preview](http://h/web/" in english and "Done ✅" in english and "[Play ▶️](" in english
    assert "排队中" not in english


def test_keepalive_is_a_dot_until_the_end() -> None:
    markdown = ChatMarkdown(Links("http://h"))
    markdown.header(TASK)
    assert markdown.advance(TASK) == []
    assert markdown.keepalive() == "."


@pytest.mark.parametrize(
    "prompt", ["中国街头吃西瓜", "", 'quotes " and \\ back', "lines\nand\ttabs \x01 \x7f \u2028 😀 </script>"]
)
def test_the_json_block_is_json_dumps_with_an_indent(prompt: str) -> None:
    block = {"prompt": prompt, "orientation": "portrait", "duration": 15, "remix_of": "task_x", "image": True}
    assert indented_json(block) == json.dumps(block, ensure_ascii=False, indent=2)
    assert json.loads(indented_json(block)) == block
