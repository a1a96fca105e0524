"""The task service: admit (dedupe, limit, charge, insert: one transaction), read, and watch tasks.

It knows nothing of HTTP. Routers call it; workers change tasks through the repository.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelgate.backends.base import Orientation
from reelgate.billing import keys, ledger
from reelgate.billing.keys import ApiKey
from reelgate.billing.limits import Limits, RateState, enforce
from reelgate.catalog import ModelEntry, Size
from reelgate.dispatch.base import Dispatcher
from reelgate.errors import InvalidRequest, NotFound
from reelgate.events.base import EventBus, Subscription
from reelgate.ids import is_task_id, new_task_id
from reelgate.observability.metrics import Metrics
from reelgate.prompt import PromptSpec
from reelgate.storage.base import Storage
from reelgate.store.paging import Page, PageRequest
from reelgate.store.tables import api_keys
from reelgate.tasks import dedupe
from reelgate.tasks import repository as repo
from reelgate.tasks.admission import KEY_STATE, GroupCommit
from reelgate.tasks.models import Task, TaskStatus


@dataclass(frozen=True)
class Submission:
    key: ApiKey
    entry: ModelEntry
    spec: PromptSpec
    #: `dedupe.request_hash` of the request, for resend protection and Idempotency-Key checks.
    request_hash: str
    idempotency_key: str | None = None
    #: The Videos API's choices, already checked against the entry; None takes the entry's defaults.
    seconds: int | None = None
    size: Size | None = None
    #: The completed task this one remixes (checked by `remix_parent`).
    remix_of: Task | None = None
    #: The completed task this one continues (checked by `remix_parent`): `seconds` are then added to it.
    extend_of: Task | None = None
    #: The reference image the video opens on (image-to-video), any size; fitted here.
    reference: Image.Image | None = None
    #: The characters (`char_...` ids, checked as the key's own) the video shows; a remix or an extension
    #: that names none keeps its source's.
    characters: tuple[str, ...] = ()
    #: Whether an identical request may join a running task (chat clients re-send; API clients poll).
    join_running: bool = True
    #: The completed task this one edits (checked by `remix_parent`), keeping its seconds and size.
    edit_of: Task | None = None
    #: An uploaded source video (checked by `inputs.videos.read_upload`), stored as the task's
    #: `input_video`: what an edit changes, or with `lead_seconds` what an extension continues.
    source_video: Path | None = None
    #: Seconds an extension of `source_video` starts with (its duration, rounded): not charged.
    lead_seconds: int = 0


@dataclass(frozen=True)
class Admission:
    task: Task
    #: True when the request joined an existing task: no new task, no new charge.
    attached: bool
    rate: RateState | None = None


@dataclass(frozen=True)
class Policy:
    limits: Limits
    resend_protection: bool = True
    #: How long a task's files are kept, counted from when it was accepted (`expires_at` is set then);
    #: None keeps them forever.
    retention: timedelta | None = None


class TaskService:
    def __init__(
        self,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        bus: EventBus,
        policy: Policy,
        metrics: Metrics | None = None,
        storage: Storage | None = None,
        runs: Collection[str] | None = None,
    ) -> None:
        self._engine = engine
        self._dispatcher = dispatcher
        self._bus = bus
        self.policy = policy
        self._metrics = metrics or Metrics()
        self._storage = storage
        #: The backends this process renders; a task of another stays queued for a process that runs it.
        self._runs = runs
        self._group = GroupCommit(engine, resend_protection=policy.resend_protection)

    async def submit(self, submission: Submission) -> Admission:
        """Attach to the task this request already made, or charge the key and create one.

        Everything happens in one transaction holding the key's row lock, so concurrent requests of
        one key are admitted one at a time: limits and balance can never be overrun by a race.
        """
        now = datetime.now(UTC)
        task = self._new_task(submission, now)
        reference = await self._store_reference(submission.reference, task) if submission.reference else None
        source = await self._store_source(submission.source_video) if submission.source_video else None
        if reference or source:
            task = replace(task, input_image=reference, input_video=source)
        try:
            admission = await self._admit(submission, task, now)
        except BaseException:
            await self._forget(reference)
            await self._forget(source)
            raise
        if admission.attached:
            await self._forget(reference)
            await self._forget(source)
            return admission
        self._metrics.task_charged(admission.task)
        if self._runs is None or admission.task.backend in self._runs:
            self._dispatcher.submit(admission.task.id)
        return admission

    async def _admit(self, submission: Submission, task: Task, now: datetime) -> Admission:
        if self._groupable(submission):
            admitted, created = await self._group.admit(
                task, submission.request_hash, join_running=submission.join_running
            )
            return Admission(admitted, attached=not created)
        async with self._engine.begin() as conn:
            await _lock_key(conn, submission.key.id)
            existing = await self._existing(conn, submission, now)
            if existing is not None:
                return Admission(existing, attached=True)
            rate = await enforce(conn, submission.key.id, self.policy.limits.for_key(submission.key), now)
            await ledger.debit(conn, submission.key.id, task.price, task.id)
            await repo.insert_task(conn, task, submission.request_hash)
            if submission.idempotency_key:
                await dedupe.remember(conn, submission.key.id, submission.idempotency_key, task.id, now)
        return Admission(task, attached=False, rate=rate)

    def _groupable(self, submission: Submission) -> bool:
        """Whether the request can be admitted with others (`tasks/admission.py`): no Idempotency-Key and
        no request limits, whose checks read per request under the key's lock."""
        limits = self.policy.limits.for_key(submission.key)
        return not (submission.idempotency_key or limits.rpm or limits.concurrency)

    async def _existing(self, conn: AsyncConnection, submission: Submission, now: datetime) -> Task | None:
        if submission.idempotency_key:
            return await dedupe.task_for_idempotency_key(
                conn, submission.key.id, submission.idempotency_key, submission.request_hash, now
            )
        if self.policy.resend_protection and submission.join_running:
            return await dedupe.running_task_with_hash(conn, submission.request_hash)
        return None

    def _new_task(self, submission: Submission, now: datetime) -> Task:
        entry, spec = submission.entry, submission.spec
        width, height = submission.size or entry.size_for(spec.orientation)
        seconds = submission.seconds or entry.seconds
        extend_of = submission.extend_of
        retention = self.policy.retention
        return Task(
            id=new_task_id(),
            key_id=submission.key.id,
            model=entry.name,
            backend=entry.backend,
            status=TaskStatus.QUEUED,
            progress=0,
            prompt=spec.prompt,
            orientation=Orientation.PORTRAIT if height > width else Orientation.LANDSCAPE,
            seconds=seconds + (extend_of.seconds if extend_of else submission.lead_seconds),
            size=f"{width}x{height}",
            fps=entry.fps,
            seed=secrets.randbits(31),
            price=entry.price_for(seconds, (width, height)),
            created_at=now,
            expires_at=now + retention if retention else None,
            remixed_from=submission.remix_of.id if submission.remix_of else None,
            extended_from=extend_of.id if extend_of else None,
            edited_from=submission.edit_of.id if submission.edit_of else None,
            input_video_role=_source_role(submission),
            characters=_characters(submission),
        )

    async def _store_reference(self, image: Image.Image, task: Task) -> str:
        """The reference image fitted to the task's size, stored as a lossless PNG; its storage key."""
        from reelgate.inputs.images import fit_cover, save_reference

        if self._storage is None:
            raise RuntimeError("this TaskService has no storage for reference images")
        with tempfile.TemporaryDirectory() as scratch:
            fitted = await asyncio.to_thread(fit_cover, image, task.width, task.height)
            path = await asyncio.to_thread(save_reference, fitted, Path(scratch) / "reference.png")
            return await self._storage.put(path, "png")

    async def _store_source(self, path: Path) -> str:
        """The uploaded source video, stored as it came (an MP4 or a MOV; both read as MP4)."""
        if self._storage is None:
            raise RuntimeError("this TaskService has no storage for uploaded videos")
        return await self._storage.put(path, "mp4")

    async def _forget(self, key: str | None) -> None:
        if key is not None and self._storage is not None:
            await self._storage.delete(key)

    async def remix_parent(self, key: ApiKey, task_id: str, param: str = "video_id", verb: str = "remix") -> Task:
        """The task `key` may remix (or extend): its own, not deleted, completed. InvalidRequest otherwise."""
        task = await self.find(task_id)
        if task is None or task.key_id != key.id:
            raise InvalidRequest(f"Cannot {verb} '{task_id}': no such video for this API key.", param=param)
        if task.status is not TaskStatus.COMPLETED:
            raise InvalidRequest(
                f"Cannot {verb} '{task_id}': only completed videos can be {verb}ed, and it is {task.status.value}.",
                param=param,
            )
        return task

    async def find(self, task_id: str) -> Task | None:
        """The task, or None when there is none or it was deleted."""
        if not is_task_id(task_id):
            return None
        async with self._engine.connect() as conn:
            task = await repo.get_task(conn, task_id)
        return task if task is not None and task.deleted_at is None else None

    async def get(self, task_id: str) -> Task:
        task = await self.find(task_id)
        if task is None:
            raise NotFound(f"No task found with id '{task_id}'.", param="id")
        return task

    async def get_for_key(self, key: ApiKey, task_id: str) -> Task:
        """The key's own task; another key's task is as missing as an unknown one (404)."""
        task = await self.find(task_id)
        if task is None or task.key_id != key.id:
            raise NotFound(f"Video with id '{task_id}' not found.", param="video_id")
        return task

    async def page_for_key(self, key: ApiKey, page: PageRequest) -> Page[Task]:
        async with self._engine.connect() as conn:
            return await repo.page_for_key(conn, key.id, page, include_deleted=False)

    async def spritesheet(self, task: Task) -> str:
        """The storage key of the completed task's frame grid, made and stored on first request."""
        from reelgate.media.encode import make_spritesheet

        assert self._storage is not None and task.video_file is not None
        if task.spritesheet_file and await self._storage.info(task.spritesheet_file):
            return task.spritesheet_file
        with tempfile.TemporaryDirectory() as scratch:
            video = await self._storage.fetch(task.video_file, Path(scratch) / "video.mp4")
            if video is None:
                raise NotFound(f"The video file of '{task.id}' is no longer stored.", param="video_id")
            sheet = await asyncio.to_thread(make_spritesheet, video, Path(scratch) / "spritesheet.jpg")
            key = await self._storage.put(sheet, "jpg")
        async with self._engine.begin() as conn:
            won = await repo.set_spritesheet(conn, task.id, key)
            current = await repo.get_task(conn, task.id)
        if won or current is None or current.spritesheet_file is None:
            return key
        await self._storage.delete(key)  # another request stored one first
        return current.spritesheet_file

    async def delete(self, key: ApiKey, task_id: str) -> Task:
        """Delete a video of `key`: the row stays (its ledger names it), the files go.

        A video still queued or being made is cancelled: its worker hears of the deletion (at once in this
        process and, on PostgreSQL, in any; else at its next progress write or heartbeat), stops between
        steps, fails the task as `cancelled` (charged as any failure) and removes its files. Whichever of
        the two ends second removes them.
        """
        task = await self.get_for_key(key, task_id)
        async with self._engine.begin() as conn:
            deleted = await repo.mark_deleted(conn, task.id, datetime.now(UTC))
        if deleted is None:
            raise NotFound(f"Video with id '{task_id}' not found.", param="video_id")
        self._bus.publish(deleted)
        if deleted.status.is_final:
            for file_key in deleted.stored_files:
                await self._forget(file_key)
        return deleted

    async def find_by_file(self, key: str) -> Task | None:
        """The task a stored file belongs to, or None."""
        async with self._engine.connect() as conn:
            return await repo.task_for_file(conn, key)

    def follow(self, task: Task) -> AbstractAsyncContextManager[Subscription]:
        """The task's snapshots as they come: first the last one published here if this process already follows
        it, else `task` (as the caller just read or wrote it), then each change until it ends.

        Nothing here reads the row: changes made here are published as they are written, and one reader
        (`tasks/watchers.py`) re-reads every followed task for the changes made elsewhere, so a stream's
        silences are its own to fill. The same snapshot may come twice.
        """
        return self._bus.subscribe(task.id, task)


def _source_role(submission: Submission) -> str | None:
    if submission.source_video is None:
        return None
    return "extend" if submission.lead_seconds else "edit"


def _characters(submission: Submission) -> str | None:
    """The task's `characters` column: the ids the request named, else those of the video it changes."""
    if submission.characters:
        return json.dumps(list(submission.characters))
    source = submission.remix_of or submission.extend_of
    return source.characters if source is not None else None


async def _lock_key(conn: AsyncConnection, key_id: str) -> None:
    """Take the key's row lock (PostgreSQL) or the write lock (SQLite) for the rest of the transaction, and
    refuse a key disabled, deleted or expired since the request read it (`keys.refusal`)."""
    locking = update(api_keys).where(api_keys.c.id == key_id).values(balance=api_keys.c.balance)
    found = await conn.execute(locking.returning(*KEY_STATE).execution_options(**ledger.BALANCE_ONLY))
    refused = keys.refusal(found.one(), datetime.now(UTC))
    if refused is not None:
        raise refused
