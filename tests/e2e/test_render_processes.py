"""A real `reelgate serve` renders in child processes: a killed render process fails its task as the
server's fault (refunded) and the next task renders; SIGTERM, or SIGKILL mid-render, leaves no child."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_crash_and_clients import MEDIUM, SMALL, _ledger, _wait_for

pytestmark = pytest.mark.e2e


def _parents() -> dict[int, int]:
    """Each live process's parent (a zombie left unreaped counts as ended)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def _children(pids: set[int]) -> set[int]:
    return {child for child, parent in _parents().items() if parent in pids}


def _descendants(pid: int) -> set[int]:
    """Every live process under `pid` (the forkserver and the render processes it forked)."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = _children(frontier) - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return pids & set(_parents())


def _gone(pids: set[int], timeout: float = 15) -> set[int]:
    """Those of `pids` still running after `timeout` seconds (empty once all have ended)."""
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def _video(server: Server, key: str, seconds: str = "4") -> str:
    body = {"prompt": "雪山下的红色火车", "seconds": seconds, "size": "720x1280"}
    reply = httpx.post(f"{server.url}/v1/videos", json=body, headers={"Authorization": key}, timeout=30)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


def test_sigterm_after_a_render_leaves_no_child(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(SMALL)
    key = server.create_key("5")
    task = _wait_for(server, _video(server, key), lambda t: t["status"] in ("completed", "failed"))
    assert task["status"] == "completed", task
    assert server.process is not None
    children = _descendants(server.process.pid)
    assert children  # the forkserver and its render process
    server.stop()
    assert _gone(children) == set()


def test_sigkill_mid_render_leaves_no_child(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(MEDIUM)
    key = server.create_key("5")
    task_id = _video(server, key, seconds="12")
    _wait_for(server, task_id, lambda t: t["status"] == "in_progress" and t["progress"] >= 5)
    assert server.process is not None
    children = _descendants(server.process.pid)
    server.kill()
    assert _gone(children) == set()  # each notices its parent's end at its next step


def test_a_killed_render_process_fails_its_task_refunded_and_the_next_renders(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(MEDIUM)
    key = server.create_key("5")
    task_id = _video(server, key, seconds="12")
    _wait_for(server, task_id, lambda t: t["status"] == "in_progress" and t["progress"] >= 5)
    assert server.process is not None
    forkserver = _children({server.process.pid})
    for pid in _children(forkserver):
        os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    task = _wait_for(server, task_id, lambda t: t["status"] in ("completed", "failed"))
    assert task["status"] == "failed" and task["error"]["code"] == "internal_error", task
    assert "render process" in task["error"]["message"]
    assert _ledger(server, task_id) == [("charge", -1_200_000), ("refund", 1_200_000)]
    after = _wait_for(server, _video(server, key), lambda t: t["status"] in ("completed", "failed"))
    assert after["status"] == "completed", after
    assert httpx.get(after["video_url"], timeout=30).status_code == 200
    assert _alive(forkserver) == forkserver  # the pool replaced its child; the server went on
