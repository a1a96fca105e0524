"""Runs one task: claim -> generate -> store -> finish, each step leaving the row consistent.

A crash at any point leaves the task `queued` or `in_progress` with a heartbeat that goes stale;
`workers/recovery.py` then restarts or fails it. Finishing is one UPDATE run under `asyncio.shield`,
so cancelling the worker never leaves a task half-finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.backends.base import (
    REMIX_JOINER,
    Backend,
    CharacterRef,
    Checkpoint,
    EditSource,
    ExtendSource,
    GeneratedVideo,
    RemixSource,
    VideoSpec,
)
from reelgate.catalog import RefundOn
from reelgate.characters import repository as characters_repo
from reelgate.errors import GenerationError, ServerFault
from reelgate.events.base import EventBus
from reelgate.ids import new_share_id
from reelgate.observability.logging import log_context
from reelgate.observability.metrics import Metrics
from reelgate.storage.base import Storage
from reelgate.storage.local import NO_SPACE, storage_error
from reelgate.store.db import is_unavailable, run_sync
from reelgate.tasks import repository as repo
from reelgate.tasks.models import Task, TaskError
from reelgate.tasks.settle import fail_task, refunds
from reelgate.workers.progress import ProgressReporter

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a finished generation waits for a progress write in flight before cancelling it.
REPORTER_GRACE_SECONDS = 5.0

#: How long a finished task's outcome is retried while the database is unavailable; after that the task
#: is left `in_progress` for the recovery sweep.
OUTCOME_PATIENCE_SECONDS = 600.0

#: How far up a chain of remixes the original prompt is looked for.
MAX_REMIX_DEPTH = 20

INTERNAL_ERROR = TaskError("internal_error", "The video could not be generated because of an internal error.")
CANCELLED = TaskError("cancelled", "The video was deleted before it was finished.")


@dataclass(frozen=True)
class StoredFiles:
    video: str
    thumbnail: str


class Worker:
    def __init__(
        self,
        engine: AsyncEngine,
        backends: Mapping[str, Backend],
        storage: Storage,
        bus: EventBus,
        *,
        work_dir: Path,
        worker_id: str,
        heartbeat_seconds: float,
        refund_on_failure: bool = False,
        refund_on: Mapping[str, RefundOn] | None = None,
        metrics: Metrics | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        self._engine = engine
        self._backends = backends
        self._storage = storage
        self._bus = bus
        self._work_dir = work_dir
        self._worker_id = worker_id
        self._heartbeat_seconds = heartbeat_seconds
        self._refund_on_failure = refund_on_failure
        #: Models with refund rules of their own (catalog `refund_on`), by name.
        self._refund_on = dict(refund_on or {})
        self._metrics = metrics or Metrics()
        #: The backends this worker may claim tasks of; None claims any (and fails those it lacks).
        self._only = list(only) if only is not None else None

    async def run(self, task_id: str) -> None:
        """Run `task_id`; on PostgreSQL it is a hint: the oldest queued task of this worker's backends runs."""
        started = time.monotonic()
        task = await self._claim(task_id)
        self._metrics.claimed(time.monotonic() - started)
        if task is None:
            return  # another worker has it, or it already ended
        with log_context(task_id=task.id, key_id=task.key_id):
            await self._run_claimed(task)

    async def _claim(self, task_id: str) -> Task | None:
        worker, backends = self._worker_id, self._only
        if self._engine.dialect.name == "postgresql":
            return await self._write(lambda conn, now: repo.claim_next(conn, worker, now, backends=backends))
        return await self._write_sync(lambda conn, now: repo.claim_sync(conn, task_id, worker, now, backends))

    async def _run_claimed(self, task: Task) -> None:
        log.info("task %s: started on %s (attempt %d)", task.id, task.backend, task.attempts)
        # Set when the task is found deleted (at claim, or at a progress write or heartbeat): the
        # generation is then cancelled between steps and the task fails as `cancelled`.
        deleted = asyncio.Event()
        if task.deleted_at is not None:
            deleted.set()
        # Set (with `deleted`, which stops the generation) when a heartbeat finds the lease gone: the
        # task was given to another attempt, so this one stops, drops its files and writes nothing more.
        lost = asyncio.Event()
        try:
            files = await self._produce(task, deleted, lost)
        except asyncio.CancelledError:
            await asyncio.shield(self._write(lambda conn, _now: repo.requeue(conn, task.id, attempt=task.attempts)))
            raise
        except GenerationError as exc:
            if lost.is_set():
                log.warning("task %s: lease lost (attempt %d); another worker has it", task.id, task.attempts)
                return
            error = CANCELLED if deleted.is_set() else TaskError(exc.code or "generation_failed", exc.message)
            await self._fail(task, error)
        except Exception as exc:
            await self._crashed(task, exc)
        else:
            await asyncio.shield(self._complete(task, files))

    async def _crashed(self, task: Task, exc: Exception) -> None:
        """Fail a task the server let down (refunded: see `errors.is_server_fault`), or, when the database
        went away under it, leave it `in_progress` for the recovery sweep to start again once it is back."""
        fault = storage_error(exc) if isinstance(exc, OSError) and exc.errno in NO_SPACE else exc
        if isinstance(fault, ServerFault):
            log.error("task %s: %s", task.id, fault.message, exc_info=exc)
            await self._fail(task, TaskError(fault.code or "internal_error", fault.message))
        elif is_unavailable(exc):
            log.warning("task %s: the database is unavailable; the recovery sweep will run it again", task.id)
        else:
            log.exception("task %s: generation crashed", task.id, exc_info=exc)
            await self._fail(task, INTERNAL_ERROR)

    async def _produce(self, task: Task, deleted: asyncio.Event, lost: asyncio.Event) -> StoredFiles:
        backend = self._backends.get(task.backend)
        if backend is None:
            raise GenerationError(f"The backend `{task.backend}` is not configured on this server.")
        if deleted.is_set():
            raise GenerationError(CANCELLED.message, code=CANCELLED.code)
        async with self._workdir(task) as workdir, self._reporting(task, deleted, lost) as reporter:
            spec = await self._spec(task, workdir)
            with self._metrics.generating(task.backend):
                generated = await _unless_deleted(deleted, backend.generate(spec, workdir, reporter))
            await reporter.finish()
            return await self._store(generated, workdir)

    async def _store(self, generated: GeneratedVideo, workdir: Path) -> StoredFiles:
        from reelgate.media.encode import make_thumbnail  # PyAV loads only in processes that render
        from reelgate.media.probe import probe

        try:
            if generated.probed is None:  # else the backend's own process probed it
                await asyncio.to_thread(probe, generated.video)
        except Exception as exc:
            raise GenerationError("The backend returned a file that is not a playable video.") from exc
        thumbnail = generated.thumbnail
        if thumbnail is None:
            thumbnail = workdir / "thumbnail.webp"
            await asyncio.to_thread(make_thumbnail, generated.video, thumbnail)
        video_key = await self._storage.put(generated.video, "mp4")
        try:
            return StoredFiles(video_key, await self._storage.put(thumbnail, "webp"))
        except BaseException:
            await self._storage.delete(video_key)
            raise

    async def _complete(self, task: Task, files: StoredFiles) -> None:
        share_id = new_share_id()
        completed = await self._write_durably(
            lambda conn, now: repo.complete_sync(
                conn,
                task.id,
                share_id=share_id,
                video_file=files.video,
                thumbnail_file=files.thumbnail,
                now=now,
                attempt=task.attempts,
            )
        )
        if completed is None:  # the recovery sweep gave it to another attempt meanwhile: the files are no one's
            for key in (files.video, files.thumbnail):
                await self._storage.delete(key)
            return
        self._metrics.task_ended(completed)
        await self._forget_if_deleted(completed)
        log.info("task %s: completed", task.id)

    async def _fail(self, task: Task, error: TaskError) -> None:
        await asyncio.shield(self._record_failure(task, error))

    async def _record_failure(self, task: Task, error: TaskError) -> None:
        refund = self._refund_on.get(task.model, self._refund_on_failure)
        failed = await self._write_durably(
            lambda conn, now: fail_task(conn, task.id, error, now, refund=refund, attempt=task.attempts),
            sync=False,
        )
        if failed is not None:
            self._metrics.task_ended(failed, refunded=refunds(error, refund))
            await self._forget_if_deleted(failed)
        log.info("task %s: failed: %s", task.id, error.message)

    async def _forget_if_deleted(self, task: Task) -> None:
        """A task deleted while it ran: its files go once it has ended (the delete left them to us)."""
        if task.deleted_at is not None:
            for key in task.stored_files:
                await self._storage.delete(key)

    async def _write(self, change: Callable[..., Awaitable[Task | None]]) -> Task | None:
        """Run one change in its own transaction and publish the task it returns."""
        async with self._engine.begin() as conn:
            task = await change(conn, datetime.now(UTC))
        if task is not None:
            self._bus.publish(task)
        return task

    async def _write_sync(self, change: Callable[[Connection, datetime], Task | None]) -> Task | None:
        """`_write` for a synchronous change: on SQLite its transaction costs one hand-over to a worker
        thread, where through aiosqlite each statement costs several (`store.db.run_sync`)."""
        task = await run_sync(self._engine, lambda conn: change(conn, datetime.now(UTC)), write=True)
        if task is not None:
            self._bus.publish(task)
        return task

    async def _write_durably(self, change: Callable[..., Any], *, sync: bool = True) -> Task | None:
        """`_write_sync` (or with `sync=False`, `_write`), tried again while the database is unavailable: an
        outcome is recorded once it is back."""
        deadline = time.monotonic() + OUTCOME_PATIENCE_SECONDS
        delay = 0.5
        while True:
            try:
                return await (self._write_sync(change) if sync else self._write(change))
            except Exception as exc:
                if not is_unavailable(exc) or time.monotonic() > deadline:
                    raise
                log.warning("the database is unavailable; recording the task's outcome again in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @asynccontextmanager
    async def _reporting(
        self, task: Task, deleted: asyncio.Event, lost: asyncio.Event
    ) -> AsyncIterator[ProgressReporter]:
        async def write(percent: int) -> None:
            change = lambda conn, now: repo.set_progress_sync(conn, task.id, percent, now, attempt=task.attempts)  # noqa: E731
            updated = await self._write_sync(change)
            if updated is None:  # refused: find out whether the lease is still ours
                await self._beat(task, deleted, lost)
            elif updated.deleted_at is not None:
                deleted.set()

        reporter = ProgressReporter(
            write=write,
            heartbeat=lambda: self._beat(task, deleted, lost),
            heartbeat_seconds=self._heartbeat_seconds,
        )
        runner = asyncio.create_task(reporter.run())
        watcher = asyncio.create_task(self._hear_deletion(task, deleted))
        try:
            yield reporter
        finally:
            watcher.cancel()
            await _stop_reporter(reporter, runner)

    async def _hear_deletion(self, task: Task, deleted: asyncio.Event) -> None:
        """Set `deleted` when the task's deletion is published (`TaskService.delete`, or the row reader and
        the PostgreSQL listener for one made elsewhere), without waiting for the next progress write or
        heartbeat, which find it too (progress is written at most twice a second)."""
        try:
            async with self._bus.subscribe(task.id) as changes:
                while not deleted.is_set():
                    changed = await changes.next(self._heartbeat_seconds)
                    if changed is not None and changed.deleted_at is not None:
                        deleted.set()
        except Exception:
            return  # the task cannot be followed (its row cannot be read): the writes and heartbeats remain

    async def _beat(self, task: Task, deleted: asyncio.Event, lost: asyncio.Event) -> None:
        """Renew the lease; when it is gone, set `lost` and `deleted` (which stops the generation)."""
        renew = lambda conn: repo.renew_lease(conn, task.id, datetime.now(UTC), attempt=task.attempts)  # noqa: E731
        held = await run_sync(self._engine, renew, write=True)
        if held is None:
            self._metrics.lease_lost()
            lost.set()
            deleted.set()
        elif held.deleted_at is not None:
            deleted.set()

    @asynccontextmanager
    async def _workdir(self, task: Task) -> AsyncIterator[Path]:
        path = self._work_dir / task.id
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            await asyncio.to_thread(shutil.rmtree, path, True)

    async def _spec(self, task: Task, workdir: Path) -> VideoSpec:
        first_frame = None
        if task.input_image:
            first_frame = await self._storage.fetch(task.input_image, workdir / "reference.png")
            if first_frame is None:
                raise GenerationError("The reference image of this video is missing from storage.")
        return VideoSpec(
            prompt=task.prompt,
            orientation=task.orientation,
            seconds=task.seconds,
            width=task.width,
            height=task.height,
            fps=task.fps,
            seed=task.seed,
            model=task.model,
            first_frame=first_frame,
            remix_of=await self._remix_source(task),
            extend_of=await self._extend_source(task, workdir),
            edit_of=await self._edit_source(task, workdir),
            characters=await self._characters(task, workdir),
            checkpoint=Checkpoint(task.id, task.backend_state, lambda state: self._save_state(task, state)),
        )

    async def _save_state(self, task: Task, state: str) -> None:
        # Shielded: a note such as "the upstream accepted job X" must not be lost to a cancellation,
        # or the next attempt would order (and pay for) the same video again.
        await asyncio.shield(self._write_state(task, state))

    async def _write_state(self, task: Task, state: str) -> None:
        async with self._engine.begin() as conn:
            await repo.save_backend_state(conn, task.id, state, datetime.now(UTC), attempt=task.attempts)

    async def _extend_source(self, task: Task, workdir: Path) -> ExtendSource | None:
        """The video an extension continues, its MP4 fetched into `workdir`."""
        if task.extended_from is None and task.input_video_role == "extend":
            return await self._extend_upload(task, workdir)
        if task.extended_from is None:
            return None
        source, video = await self._source_video(task.extended_from, workdir, "this extension continues")
        return ExtendSource(
            prompt=source.prompt,
            seed=source.seed,
            seconds=source.seconds,
            video=video,
            backend_state=source.backend_state,
        )

    async def _extend_upload(self, task: Task, workdir: Path) -> ExtendSource:
        """An uploaded video an extension continues: its own prompt and seed plan what comes next."""
        from reelgate.media.probe import probe  # PyAV loads only in processes that render

        video = await self._input_video(task, workdir)
        info = await asyncio.to_thread(probe, video)
        return ExtendSource(prompt=task.prompt, seed=task.seed, seconds=max(1, round(info.duration)), video=video)

    async def _edit_source(self, task: Task, workdir: Path) -> EditSource | None:
        """The video an edit changes, its MP4 fetched into `workdir`; with its prompt and seed when its
        storyboard is its prompt's alone (no image, upload, remix, extension, edit or character went into it)."""
        if task.input_video_role == "edit":
            return EditSource(await self._input_video(task, workdir))
        if task.edited_from is None:
            return None
        source, video = await self._source_video(task.edited_from, workdir, "this edit changes")
        made_from = (source.input_image, source.input_video, source.remixed_from, source.extended_from)
        if any((*made_from, source.edited_from, source.characters)):
            return EditSource(video)
        return EditSource(video, source.prompt, source.seed)

    async def _source_video(self, task_id: str, workdir: Path, role: str) -> tuple[Task, Path]:
        """The completed task a new video starts from, and its MP4 fetched into `workdir`."""
        async with self._engine.connect() as conn:
            source = await repo.get_task(conn, task_id)
        video = None
        if source is not None and source.video_file is not None and not source.files_expired:
            video = await self._storage.fetch(source.video_file, workdir / "source.mp4")
        if source is None or video is None:
            raise GenerationError(f"The video {role} is no longer stored.")
        return source, video

    async def _input_video(self, task: Task, workdir: Path) -> Path:
        video = await self._storage.fetch(task.input_video, workdir / "source.mp4") if task.input_video else None
        if video is None:
            raise GenerationError("The uploaded video of this task is no longer stored.")
        return video

    async def _characters(self, task: Task, workdir: Path) -> tuple[CharacterRef, ...]:
        """The characters the video shows, each with its portrait key frame fetched into `workdir`."""
        if not task.characters:
            return ()
        async with self._engine.connect() as conn:
            found = [await characters_repo.get_character(conn, cid) for cid in json.loads(task.characters)]
        refs: list[CharacterRef] = []
        for index, character in enumerate(found):
            frame = None
            if character is not None:
                frame = await self._storage.fetch(character.portrait, workdir / f"character{index}.png")
            if character is None or frame is None:
                raise GenerationError("A character this video shows is no longer stored.")
            refs.append(CharacterRef(character.name, frame))
        return tuple(refs)

    async def _remix_source(self, task: Task) -> RemixSource | None:
        """The original prompt and seed of a remix chain, with every earlier instruction appended."""
        if task.remixed_from is None:
            return None
        chain: list[Task] = []
        current = task
        async with self._engine.connect() as conn:
            while current.remixed_from is not None and len(chain) < MAX_REMIX_DEPTH:
                parent = await repo.get_task(conn, current.remixed_from)
                if parent is None:
                    break
                chain.append(parent)
                current = parent
        if not chain:
            raise GenerationError("The video this remix starts from no longer exists.")
        return RemixSource(prompt=REMIX_JOINER.join(t.prompt for t in reversed(chain)), seed=chain[-1].seed)


async def _stop_reporter(reporter: ProgressReporter, runner: asyncio.Task[None]) -> None:
    """Let a progress write or heartbeat in flight finish rather than cancel it inside its transaction.

    A transaction cancelled mid-statement can leave SQLite's write lock held until its connection is
    cleaned up, and the requeue or failure write that follows then waits on that lock.
    """
    reporter.stop()
    try:
        async with asyncio.timeout(REPORTER_GRACE_SECONDS):
            await asyncio.shield(runner)
    except TimeoutError:
        pass
    except Exception:
        log.exception("progress reporting failed")  # the task's own outcome matters more
    finally:
        if not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)


async def _unless_deleted(deleted: asyncio.Event, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it when `deleted` is set first (GenerationError `cancelled`)."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(deleted.wait())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not job.done():
            job.cancel()  # a backend stops at its next step and returns once the GPU is free
            await asyncio.gather(job, return_exceptions=True)
    if job.cancelled():
        raise GenerationError(CANCELLED.message, code=CANCELLED.code)
    return job.result()
