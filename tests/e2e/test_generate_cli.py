"""`reelgate generate` and `reelgate videos ...` against a real `reelgate serve`, over HTTP only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reelgate.billing.keys import new_secret
from reelgate.client.commands import Outcome
from reelgate.media.probe import probe
from tests.conftest import SMALL_MODELS

pytestmark = pytest.mark.e2e

#: Small sizes, and a slower model for the Ctrl-C test (more frames to render).
MODELS = {
    **SMALL_MODELS,
    "slow-preview": {"backend": "procedural", "seconds": 15, "fps": 24, "portrait": "144x256", "landscape": "256x144"},
}


def reelgate(server: Any, key: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "REELGATE_SERVER": server.url, "REELGATE_API_KEY": key}
    command = [sys.executable, "-m", "reelgate", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_generate_writes_the_mp4_and_videos_commands_follow_it(make_server: Any, tmp_path: Path) -> None:
    server = make_server(MODELS)
    assert f"data folder {server.data_dir}, database {server.data_dir / 'reelgate.db'}" in server.output()
    key = server.create_key("10")
    made = reelgate(server, key, "generate", "海边日落", "--model", "sora-2-hd-10s-chat", "--landscape", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    task_id, written = made.stdout.splitlines()
    assert task_id.startswith("task_") and written == f"{task_id}.mp4"
    info = probe(tmp_path / written)
    assert (info.width, info.height) == (256, 144) and info.duration == pytest.approx(10, abs=0.2)
    assert "100%" in made.stderr and f"{server.url}/web/{task_id}" in made.stderr

    remixed = reelgate(server, key, "generate", "改成夜景", "--remix", task_id, "-o", "night.mp4", cwd=tmp_path)
    assert remixed.returncode == 0, remixed.stderr
    remix_id = remixed.stdout.splitlines()[0]
    assert probe(tmp_path / "night.mp4").width == 256

    listed = reelgate(server, key, "videos", "list", cwd=tmp_path)
    assert [line.split()[:3] for line in listed.stdout.splitlines()] == [
        [remix_id, "completed", "100%"],
        [task_id, "completed", "100%"],
    ]
    assert listed.stderr.split()[:3] == ["id", "status", "done"]
    got = reelgate(server, key, "videos", "get", remix_id, cwd=tmp_path)
    assert f'"remixed_from_video_id": "{task_id}"' in got.stdout
    thumb = reelgate(server, key, "videos", "download", task_id, "--thumbnail", cwd=tmp_path)
    assert (tmp_path / f"{task_id}.webp").read_bytes()[8:12] == b"WEBP", thumb.stderr
    assert reelgate(server, key, "videos", "delete", task_id, cwd=tmp_path).stdout.strip() == f"deleted {task_id}"
    gone = reelgate(server, key, "videos", "get", task_id, cwd=tmp_path)
    assert gone.returncode == Outcome.REFUSED and "error:" in gone.stderr


def test_exit_codes_for_a_bad_key_a_bad_model_and_no_server(make_server: Any, tmp_path: Path) -> None:
    server = make_server(MODELS)
    unknown = reelgate(server, new_secret(), "generate", "海边日落", cwd=tmp_path)
    assert unknown.returncode == Outcome.KEY == 3
    assert "Incorrect API key provided" in unknown.stderr and "reelgate keys create" in unknown.stderr
    missing = reelgate(server, "", "videos", "list", cwd=tmp_path)
    assert missing.returncode == Outcome.KEY and "REELGATE_API_KEY" in missing.stderr
    key = server.create_key("10")
    model = reelgate(server, key, "generate", "海边日落", "--model", "sora-9", cwd=tmp_path)
    assert model.returncode == Outcome.REFUSED and "Available models:" in model.stderr
    server.stop()
    down = reelgate(server, key, "videos", "list", cwd=tmp_path)
    assert down.returncode == Outcome.UNREACHABLE and "Cannot reach the server" in down.stderr
    assert not list(tmp_path.glob("*.mp4"))


def test_ctrl_c_leaves_the_video_running_and_says_how_to_resume(make_server: Any, tmp_path: Path) -> None:
    server = make_server(MODELS)
    key = server.create_key("10")
    env = {**server.env, "REELGATE_SERVER": server.url, "REELGATE_API_KEY": key}
    command = [sys.executable, "-m", "reelgate", "generate", "一只猫", "--model", "slow-preview", "--size", "144x256"]
    with subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as running:
        assert running.stdout is not None
        task_id = running.stdout.readline().strip()  # printed at once, before any progress
        os.kill(running.pid, signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    assert task_id.startswith("task_"), stderr
    assert running.returncode == Outcome.INTERRUPTED, stderr
    resume = f"reelgate videos wait {task_id} -o {task_id}.mp4"
    assert resume in stderr
    resumed = reelgate(server, key, *resume.split()[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert probe(tmp_path / f"{task_id}.mp4").duration == pytest.approx(15, abs=0.2)
