"""Every status transition a task can make, in one place.

    queued ──claim──> in_progress ──complete──> completed
      │  ^                │
      │  └────requeue─────┤   (the worker that held it died; restarted up to max_attempts)
      │                   v
      └──────fail──────> failed

    completed ──expire_files──> completed, files_expired   (retention deleted its files)

The repository applies a transition as one conditional UPDATE (`WHERE status IN sources`), so two
processes racing for the same task cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelgate.tasks.models import TaskStatus


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[TaskStatus]
    target: TaskStatus


CLAIM = Transition("claim", frozenset({TaskStatus.QUEUED}), TaskStatus.IN_PROGRESS)
PROGRESS = Transition("progress", frozenset({TaskStatus.IN_PROGRESS}), TaskStatus.IN_PROGRESS)
COMPLETE = Transition("complete", frozenset({TaskStatus.IN_PROGRESS}), TaskStatus.COMPLETED)
FAIL = Transition("fail", frozenset({TaskStatus.QUEUED, TaskStatus.IN_PROGRESS}), TaskStatus.FAILED)
REQUEUE = Transition("requeue", frozenset({TaskStatus.IN_PROGRESS}), TaskStatus.QUEUED)
#: Not a new status: a completed task whose files retention deleted keeps `completed`, with `files_expired`.
EXPIRE_FILES = Transition("expire_files", frozenset({TaskStatus.COMPLETED}), TaskStatus.COMPLETED)
