"""A real `reelgate serve` killed with SIGKILL mid-poll resumes the same upstream job after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, server_env
from tests.relay.conftest import relayed, upstream
from tests.relay.fakes import Script, VideosUpstream
from tests.relay.servers import serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def _wait(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigkill_mid_poll_resumes_the_same_upstream_job(tmp_path: Path, media: Path, servers: list[Server]) -> None:
    fake = VideosUpstream(media, Script(progress=(0, *range(3, 100, 3))))
    with serving(fake) as up:
        upstreams = {"acme": upstream(up.url, poll_interval=0.05, max_poll_interval=0.05)}
        env = server_env(tmp_path, {"m": relayed("openai-videos:acme")}, lease_seconds="3")
        env["REELGATE_UPSTREAMS"] = json.dumps(upstreams)
        server = Server(tmp_path / "data", env)
        servers.append(server)
        server.start()
        key = server.create_key()

        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            headers={"Authorization": key},
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "雪山下的红色火车"}]},
            timeout=30,
        ) as response:
            task_id = next(line.split("ID: `")[1].split("`")[0] for line in response.iter_lines() if "ID: `" in line)
            _wait(lambda: fake.counts.polls >= 5, what="the relay to poll")
            server.kill()
        polls_at_kill = fake.counts.polls

        server.start()
        _wait(lambda: _status(server, task_id) in ("completed", "failed"), what="the task to end")
        task = httpx.get(f"{server.url}/source/{task_id}").json()
        up.stop()

        assert task["status"] == "completed", (task, server.output())
        assert fake.counts.accepted == 1 and fake.counts.creates == 1  # resumed, never ordered twice
        (job,) = fake.jobs.values()
        assert job.polls > polls_at_kill and job.downloaded  # the same job, polled on after the restart
        video = httpx.get(task["video_url"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"  # served by reelgate, upstream gone


def _status(server: Server, task_id: str) -> str:
    return str(httpx.get(f"{server.url}/source/{task_id}").json()["status"])
