"""The provider's own client.py, URL and key changed, against a real `reelgate serve` at the default HD size."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reelgate.media.probe import probe
from tests.e2e.conftest import SEED_CLIENT, SHARED_SEED_CLIENT, Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED_URL = '"https://www.dmxapi.cn/v1/chat/completions"'
SEED_KEY = '"sk-********************************************"'
SEED_MODEL = '"model": "sora-2-hd-15s-chat"'
SEED_CONTENT = '"中国街头吃西瓜,生成视频比例9:16"'


def test_the_copied_seed_client_is_the_providers() -> None:
    if not SHARED_SEED_CLIENT.exists():
        pytest.skip("the shared seed folder is not beside this checkout")
    assert SEED_CLIENT.read_bytes() == SHARED_SEED_CLIENT.read_bytes()


def run_seed_client(server: Server, key: str, tmp_path: Path, model: str = "", content: str = "") -> str:
    source = SEED_CLIENT.read_text(encoding="utf-8")
    assert SEED_URL in source and SEED_KEY in source, "the seed client changed shape"
    source = source.replace(SEED_URL, f'"{server.url}/v1/chat/completions"').replace(SEED_KEY, f'"{key}"')
    if model:
        source = source.replace(SEED_MODEL, f'"model": "{model}"')
    if content:
        source = source.replace(SEED_CONTENT, f'"{content}"')
    script = tmp_path / "client.py"
    script.write_text(source, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode("utf-8")


def check_printed_reply(output: str, server: Server, prompt: str, orientation: str, seconds: int) -> tuple[str, str]:
    """Everything the provider's reply shows; returns the (thumbnail, video) links."""
    assert f'"prompt": "{prompt}"' in output
    assert f'"orientation": "{orientation}"' in output and f'"duration": {seconds}' in output
    task_id = re.search(r"> ID: `(task_[0-9a-z]{26})`", output).group(1)  # type: ignore[union-attr]
    assert f"[数据预览]({server.url}/web/{task_id}) | [原始数据]({server.url}/source/{task_id})" in output
    assert re.search(r"排队中\.+ 生成中\.", output)
    figures = [int(f) for f in re.findall(r"(\d+)\.\.", output.split("🏃 进度", 1)[1].split("生成完成")[0])]
    assert len(figures) >= 3 and figures == sorted(set(figures)) and figures[-1] == 100, figures
    assert "生成完成 ✅" in output
    assert re.search(r"sid: `s_[0-9a-f]{32}`", output)
    thumb = re.search(r"!\[[^\]]*\]\((http[^)]+\.webp)\)", output).group(1)  # type: ignore[union-attr]
    video = re.search(r"\[在线播放▶️\]\((http[^)]+\.mp4)\)", output).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(rf"{server.url}/cdn/\d{{8}}/[0-9a-f]{{32}}\.mp4", video)
    return thumb, video


def check_video(url: str, tmp_path: Path, size: tuple[int, int], seconds: float) -> bytes:
    data = httpx.get(url, timeout=30).content
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    info = probe(path)
    assert (info.width, info.height) == size
    assert abs(info.duration - seconds) <= 0.1
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.has_audio and info.audio_sample_rate == 48000
    assert abs(info.audio_duration - seconds) <= 0.1  # type: ignore[operator]
    return data


def test_seed_client_portrait_15s(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    key = server.create_key("10")  # the CLI works while the server runs
    output = run_seed_client(server, key, tmp_path)
    thumb, video = check_printed_reply(output, server, "中国街头吃西瓜", "portrait", 15)
    data = check_video(video, tmp_path, (1024, 1792), 15.0)

    ranged = httpx.get(video, headers={"Range": "bytes=100-1099"})
    assert ranged.status_code == 206 and ranged.content == data[100:1100]
    assert ranged.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert httpx.get(video).headers["cache-control"].endswith("immutable")

    from PIL import Image

    webp = tmp_path / "thumb.webp"
    webp.write_bytes(httpx.get(thumb).content)
    with Image.open(webp) as image:
        assert image.format == "WEBP" and image.size[0] < image.size[1]

    task_id = re.search(r"ID: `(task_\w+)`", output).group(1)  # type: ignore[union-attr]
    source = httpx.get(f"{server.url}/source/{task_id}").json()
    assert source["status"] == "completed" and source["video_url"] == video and source["seconds"] == "15"
    page = httpx.get(f"{server.url}/web/{task_id}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and task_id in page.text
    assert "9" in server.cli("keys", "list").split()  # 10 credits, charged once: 1


def test_seed_client_landscape_10s(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    key = server.create_key("10")
    output = run_seed_client(server, key, tmp_path, model="sora-2-hd-10s-chat", content="横屏，夕阳下的海边小镇")
    _, video = check_printed_reply(output, server, "夕阳下的海边小镇", "landscape", 10)
    check_video(video, tmp_path, (1792, 1024), 10.0)
