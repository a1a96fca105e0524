"""Extensions: the completed video a task continues (`POST /v1/videos/extensions`).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("extended_from", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("extended_from")
