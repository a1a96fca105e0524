"""Chat clients: a per-key player block switch, and the background requests answered for free.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from reelgate.store.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("player_block", sa.Boolean))
    op.create_table(
        "background_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("client", sa.String(40), nullable=False),
        sa.Column("template", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_background_requests_key_created", "background_requests", ["key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_background_requests_key_created", "background_requests")
    op.drop_table("background_requests")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("player_block")
