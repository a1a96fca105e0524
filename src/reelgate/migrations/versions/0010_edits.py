"""Edits (`POST /v1/videos/edits`) and uploaded source videos for edits and extensions.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("edited_from", sa.String(40)))
        batch.add_column(sa.Column("input_video", sa.String(100)))
        batch.add_column(sa.Column("input_video_role", sa.String(10)))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("input_video_role")
        batch.drop_column("input_video")
        batch.drop_column("edited_from")
