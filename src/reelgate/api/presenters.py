"""Domain tasks -> wire objects."""

from __future__ import annotations

from datetime import datetime

from reelgate.api.schemas import VideoError, VideoObject
from reelgate.render.chat_markdown import Links
from reelgate.tasks.models import Task


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def expired_notice(task: Task) -> str:
    """What a client is told about a video whose files retention deleted."""
    when = f"{task.expires_at:%Y-%m-%d %H:%M} UTC" if task.expires_at else "an earlier date"
    return f"This video expired on {when} and its files were deleted."


def video_object(task: Task, links: Links) -> VideoObject:
    return VideoObject(
        id=task.id,
        model=task.model,
        status=task.status.value,
        progress=task.progress,
        created_at=int(task.created_at.timestamp()),
        completed_at=_unix(task.completed_at),
        expires_at=_unix(task.expires_at),
        seconds=str(task.seconds),
        size=task.size,
        prompt=task.prompt,
        remixed_from_video_id=task.remixed_from,
        extended_from_video_id=task.extended_from,
        edited_from_video_id=task.edited_from,
        error=VideoError(code=task.error.code, message=task.error.message) if task.error else None,
        orientation=task.orientation.value,
        sid=task.share_id,
        video_url=links.file(task.video_file) if task.video_file else None,
        thumbnail_url=links.file(task.thumbnail_file) if task.thumbnail_file else None,
        files_expired=task.files_expired,
    )
