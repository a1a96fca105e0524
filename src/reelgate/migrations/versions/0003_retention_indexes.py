"""Indexes for retention: expired tasks by `expires_at`, and the task of a stored file by its key.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tasks_expires_at": "expires_at",
    "ix_tasks_video_file": "video_file",
    "ix_tasks_thumbnail_file": "thumbnail_file",
}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.create_index(name, "tasks", [column])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "tasks")
