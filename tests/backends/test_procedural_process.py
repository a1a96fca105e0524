"""Procedural renders in child processes: the film arrives with its progress, a cancelled render stops
its child, a killed child fails its render as the server's fault and the next render works, and closing
leaves no child behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reelgate.backends.base import Orientation, VideoSpec
from reelgate.backends.procedural import ProceduralBackend, from_settings
from reelgate.backends.procedural.process import RENDER_NICENESS
from reelgate.errors import ServerFault
from reelgate.media.probe import probe
from tests.conftest import make_settings


def _spec(seconds: int = 4, size: tuple[int, int] = (144, 256), fps: int = 8) -> VideoSpec:
    return VideoSpec("中国街头吃西瓜，夕阳下的城市", Orientation.PORTRAIT, seconds, *size, fps, 1, "m")


#: Long enough (720 frames) that a render is still going when the test acts on it.
LONG = _spec(seconds=30, size=(288, 512), fps=24)


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie left unreaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _folders(tmp_path: Path, count: int) -> list[Path]:
    folders = [tmp_path / str(n) for n in range(count)]
    for folder in folders:
        folder.mkdir()
    return folders


def _wait_gone(pid: int) -> None:
    """Wait for `pid` to end: not our own child (the forkserver's), so it cannot be waited for."""
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


class Progress(list[int]):
    """An `on_progress` callback that records the figures and says when the first one came."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    def __call__(self, percent: int) -> None:
        self.append(percent)
        self.started.set()


@pytest.fixture
async def backend() -> AsyncIterator[ProceduralBackend]:
    backend = ProceduralBackend(processes=1)
    yield backend
    await backend.close()


async def test_renders_in_a_child_with_progress(backend: ProceduralBackend, tmp_path: Path) -> None:
    progress: list[int] = []
    result = await backend.generate(_spec(), tmp_path, progress.append)
    info = probe(result.video)
    assert (info.width, info.height, info.frames, info.has_audio) == (144, 256, 32, True)
    # A step at most every PROGRESS_EVERY_SECONDS (the render takes several), and its 100.
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 2
    assert result.thumbnail is not None and result.thumbnail.stat().st_size > 0
    assert backend.pool is not None
    assert len(backend.pool.pids) == 1 and os.getpid() not in backend.pool.pids


async def test_a_render_child_gives_the_server_the_cpu_first(backend: ProceduralBackend, tmp_path: Path) -> None:
    """Renders are batch work: when the cores are all busy, the server's event loop (the streams) goes first."""
    await backend.generate(_spec(seconds=1), tmp_path, lambda percent: None)
    assert backend.pool is not None
    [child] = backend.pool.pids
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, child) == min(19, ours + RENDER_NICENESS)


async def test_cancelling_stops_the_child_which_renders_the_next_one(
    backend: ProceduralBackend, tmp_path: Path
) -> None:
    progress = Progress()
    (tmp_path / "long").mkdir()
    job = asyncio.create_task(backend.generate(LONG, tmp_path / "long", progress))
    await progress.started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert progress[-1] < 100 and not (tmp_path / "long" / "video.mp4").exists()  # the partial file is gone
    assert backend.pool is not None
    child = backend.pool.pids
    result = await backend.generate(_spec(), tmp_path, lambda _: None)
    assert probe(result.video).frames == 32
    assert backend.pool.pids == child  # the same child: it stopped, it was not killed


async def test_a_killed_child_fails_its_render_and_the_next_one_works(
    backend: ProceduralBackend, tmp_path: Path
) -> None:
    progress = Progress()
    (tmp_path / "long").mkdir()
    job = asyncio.create_task(backend.generate(LONG, tmp_path / "long", progress))
    await progress.started.wait()
    assert backend.pool is not None
    [killed] = backend.pool.pids
    os.kill(killed, signal.SIGKILL)
    with pytest.raises(ServerFault, match="killed by signal 9") as failure:
        await job
    assert failure.value.code == "internal_error"  # the server's fault: refunded (see errors.is_server_fault)
    result = await backend.generate(_spec(), tmp_path, lambda _: None)
    assert probe(result.video).frames == 32
    assert backend.pool.pids and killed not in backend.pool.pids


async def test_a_child_that_died_while_idle_is_replaced(backend: ProceduralBackend, tmp_path: Path) -> None:
    await backend.generate(_spec(), tmp_path, lambda _: None)
    assert backend.pool is not None
    [killed] = backend.pool.pids
    os.kill(killed, signal.SIGKILL)
    _wait_gone(killed)
    result = await backend.generate(_spec(), tmp_path, lambda _: None)
    assert probe(result.video).frames == 32


async def test_an_error_in_the_child_is_raised_in_the_parent(backend: ProceduralBackend, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    spec = VideoSpec("一只猫", Orientation.PORTRAIT, 2, 144, 256, 8, 1, "m", first_frame=broken)
    with pytest.raises(Exception) as raised:
        await backend.generate(spec, tmp_path, lambda _: None)
    assert "Traceback" in str(raised.value.__cause__)  # the child's own traceback, for the log
    result = await backend.generate(_spec(), tmp_path, lambda _: None)  # the same child goes on
    assert probe(result.video).frames == 32


async def test_renders_at_once_share_the_pool(tmp_path: Path) -> None:
    backend = ProceduralBackend(processes=2)
    try:
        renders = (backend.generate(_spec(), folder, lambda _: None) for folder in _folders(tmp_path, 3))
        results = await asyncio.gather(*renders)
        assert [probe(r.video).frames for r in results] == [32, 32, 32]
        assert backend.pool is not None and len(backend.pool.pids) == 2
    finally:
        await backend.close()


async def test_closing_leaves_no_child(tmp_path: Path) -> None:
    backend = ProceduralBackend(processes=2)
    await asyncio.gather(*(backend.generate(_spec(), folder, lambda _: None) for folder in _folders(tmp_path, 2)))
    assert backend.pool is not None
    children = backend.pool.pids
    assert len(children) == 2
    await backend.close()
    assert backend.pool.pids == [] and not any(map(_running, children))
    result = await backend.generate(_spec(), tmp_path, lambda _: None)  # a later render starts a new one
    assert probe(result.video).frames == 32
    await backend.close()


@pytest.mark.parametrize(("overrides", "size"), [({}, 1), ({"worker_slots": 3}, 3), ({"render_processes": 2}, 2)])
def test_one_process_per_worker_slot_unless_set(tmp_path: Path, overrides: dict[str, int], size: int) -> None:
    backend = from_settings("procedural", make_settings(tmp_path, **overrides), [])
    assert backend.pool is not None and backend.pool.size == size


def test_no_processes_renders_in_a_thread(tmp_path: Path) -> None:
    assert from_settings("procedural", make_settings(tmp_path, render_processes=0), []).pool is None
