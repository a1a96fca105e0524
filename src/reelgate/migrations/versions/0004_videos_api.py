"""The Videos API over the same tasks: remixes, reference images, spritesheets and deleted videos.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from reelgate.store.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("remixed_from", sa.String(40)))
        batch.add_column(sa.Column("input_image", sa.String(100)))
        batch.add_column(sa.Column("spritesheet_file", sa.String(100)))
        batch.add_column(sa.Column("deleted_at", UtcDateTime))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in ("deleted_at", "spritesheet_file", "input_image", "remixed_from"):
            batch.drop_column(column)
