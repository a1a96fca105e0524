"""Renders in child processes, so that their CPU work never holds the server's GIL.

The event loop that serves thousands of streams shares one GIL with every thread of its process, and a
render's painting (Python and NumPy) and its muxing hold it for long stretches: in a thread, renders and
streams starve each other. A `RenderPool` keeps up to `size` long-lived children, each rendering one
film at a time and talking to the parent over its own pipe:

    parent -> child   (spec, workdir)          then, to stop it early, STOP
    child -> parent   ("progress", percent)... then ("done", video) | ("failed", exc, traceback) | ("stopped",)

Children are started lazily from a `forkserver` (never forked from a process that runs an event loop
and threads), which loads the renderer's modules once, so a new child is ready in milliseconds. A child
that dies mid-render (killed, out of memory) fails that render as the server's fault and is replaced by
the next render. A child whose parent dies reads the end of its pipe and exits: none outlives the server.

A child runs at a lower CPU priority than the server (`RENDER_NICENESS`): a render is batch work, a
stream's next bytes are not, so when every core is busy the event loop goes first, and renders take the
rest. With a core to spare, as while thousands of streams are held, renders lose nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.errors import ServerFault

log = logging.getLogger(__name__)

#: How much lower a render child's CPU priority is than the server's (`os.nice`): at 10, the kernel gives
#: it about a tenth of a core that the server's loop also wants.
RENDER_NICENESS = 10

#: What the parent sends a rendering child to stop it at its next frame.
STOP = "stop"

#: How long a stopped child may take to reach its next frame before it is killed.
STOP_GRACE_SECONDS = 10.0

#: How long a child asked to leave at shutdown may take before it is killed.
CLOSE_GRACE_SECONDS = 5.0

#: The least time between two progress messages of a rendering child (its 100 always goes): each one
#: wakes the parent's event loop, and the parent writes a task's progress at most twice a second anyway.
PROGRESS_EVERY_SECONDS = 0.05


class RenderCancelled(Exception):
    """A render was asked to stop before it finished."""


class StopSignal(Protocol):
    def is_set(self) -> bool: ...


class Renderer(Protocol):
    """Renders a spec (blocking); raises `RenderCancelled` once `stop` is set."""

    def render(
        self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback, stop: StopSignal | None = None
    ) -> GeneratedVideo: ...


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a child, attached as its `__cause__` in the parent."""


class RenderPool:
    """Up to `size` children, each built with `make_renderer()` (picklable) and rendering one spec at a time.

    `preload` names modules the forkserver imports once for all children (the renderer's, typically).
    """

    def __init__(self, size: int, make_renderer: Callable[[], Renderer], preload: Sequence[str] = ()) -> None:
        self.size = size
        self._make_renderer = make_renderer
        self._preload = list(preload)
        self._idle: list[Child] = []
        self._children: set[Child] = set()
        self._slots: asyncio.Semaphore | None = None

    async def render(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        """Render in an idle child (a new one if none is idle); cancelling stops the child's render."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            child = await self._checkout()
            try:
                video = await child.render(spec, workdir, on_progress)
            finally:
                self._checkin(child)
            return video

    async def close(self) -> None:
        """Ask every child to leave, killing those that do not in time; a later render starts new ones."""
        children, self._children, self._idle = list(self._children), set(), []
        self._slots = None  # a later render may run in another event loop
        await asyncio.gather(*(asyncio.to_thread(child.leave) for child in children))

    @property
    def pids(self) -> list[int]:
        """The running children's process ids."""
        return [child.pid for child in self._children if child.pid is not None]

    async def _checkout(self) -> Child:
        while self._idle:
            child = self._idle.pop()
            if child.alive:
                return child
            self._forget(child)
        child = Child(self._make_renderer, self._preload)
        self._children.add(child)
        try:
            await asyncio.to_thread(child.start)
        except BaseException:
            self._forget(child)
            raise
        return child

    def _checkin(self, child: Child) -> None:
        if child.ready and child in self._children:
            self._idle.append(child)
        else:
            self._forget(child)

    def _forget(self, child: Child) -> None:
        self._children.discard(child)
        child.kill()


class Child:
    """One child process and the parent's end of its pipe. `ready` while it waits for a job."""

    def __init__(self, make_renderer: Callable[[], Renderer], preload: list[str]) -> None:
        context = multiprocessing.get_context("forkserver")
        # Only takes effect before the forkserver starts (the first child of this process).
        context.set_forkserver_preload(preload)
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=serve, args=(theirs, make_renderer), name="reelgate-render", daemon=True)
        self._theirs = theirs
        self.ready = False

    def start(self) -> None:
        self._process.start()
        self._theirs.close()  # the child holds its end: reading EOF here then means it died
        self.ready = True

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        """Whether an idle child can take a job: it has not exited, nor closed its end of the pipe (a dead
        child's end closes at once, before the forkserver reports its exit)."""
        return self._process.is_alive() and not self._conn.poll()

    async def render(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        self.ready = False
        try:
            self._conn.send((spec, workdir))
        except OSError as exc:
            raise self._died() from exc
        try:
            return await self._outcome(on_progress)
        except asyncio.CancelledError:
            await self._stop()
            raise

    async def _outcome(self, on_progress: ProgressCallback) -> GeneratedVideo:
        while True:
            reply = await self._receive()
            if reply[0] == "progress":
                on_progress(reply[1])
                continue
            self.ready = True
            if reply[0] == "done":
                video: GeneratedVideo = reply[1]
                return video
            if reply[0] == "failed":
                exc: BaseException = reply[1]
                raise exc from RemoteTraceback(reply[2])
            raise RenderCancelled  # "stopped" without being asked: cannot happen, but never hang on it

    async def _stop(self) -> None:
        """Stop the child at its next frame and wait for it to say so; kill it if it does not in time."""
        try:
            self._conn.send(STOP)
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                while (await self._receive())[0] == "progress":
                    pass
            self.ready = True
        except (OSError, ServerFault, TimeoutError, asyncio.CancelledError):
            self.kill()

    async def _receive(self) -> tuple[Any, ...]:
        while not self._conn.poll():  # True at the end of the pipe too: recv then raises EOFError
            await _readable(self._conn.fileno())
        try:
            reply: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        return reply

    def _died(self) -> ServerFault:
        self.ready = False
        self._process.join(1.0)
        code = self._process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        log.error("render process %s %s in the middle of a render", self._process.pid, how)
        return ServerFault(f"The video could not be made: its render process {how} (out of memory?).")

    def kill(self) -> None:
        self.ready = False
        self._conn.close()
        if self._process.pid is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(1.0)

    def leave(self) -> None:
        """Ask the child to exit (blocking, up to `CLOSE_GRACE_SECONDS`), then kill it if it has not."""
        if self._process.pid is None:
            return
        with contextlib.suppress(OSError):  # already gone
            self._conn.send(None)
        self._process.join(CLOSE_GRACE_SECONDS)
        self.kill()


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class _Progress:
    """A child's progress callback: sends the parent a step at most every `PROGRESS_EVERY_SECONDS`, and 100."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sent_at = -PROGRESS_EVERY_SECONDS

    def __call__(self, percent: int) -> None:
        now = time.monotonic()
        if percent >= 100 or now - self._sent_at >= PROGRESS_EVERY_SECONDS:
            self._sent_at = now
            self._conn.send(("progress", percent))


class _ParentSaysStop:
    """The child's stop signal: any message from the parent mid-render (STOP), or the parent gone."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def is_set(self) -> bool:
        return self._conn.poll()


def serve(conn: Connection, make_renderer: Callable[[], Renderer]) -> None:
    """A child's life: render each job the parent sends, until the parent sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    os.nice(RENDER_NICENESS)
    renderer = make_renderer()
    stop = _ParentSaysStop(conn)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        if job == STOP:
            continue  # it came after the render it was meant for had finished
        spec, workdir = job
        try:
            conn.send(_outcome(renderer, spec, workdir, stop, conn))
        except OSError:
            return  # the parent is gone


def _outcome(renderer: Renderer, spec: VideoSpec, workdir: Path, stop: StopSignal, conn: Connection) -> tuple[Any, ...]:
    try:
        video = renderer.render(spec, workdir, _Progress(conn), stop)
    except RenderCancelled:
        return ("stopped",)
    except Exception as exc:
        return ("failed", _picklable(exc), traceback.format_exc())
    return ("done", video)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
