"""Key limits, expiry and model lists; resend protection, idempotency keys and retention.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from reelgate.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", UtcDateTime))
        batch.add_column(sa.Column("allowed_models", sa.Text))
        batch.add_column(sa.Column("rpm_limit", sa.Integer))
        batch.add_column(sa.Column("concurrency_limit", sa.Integer))
        batch.add_column(sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("request_hash", sa.String(64)))
        batch.add_column(sa.Column("expires_at", UtcDateTime))
        batch.add_column(sa.Column("files_expired", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_index("ix_tasks_request_hash", ["request_hash"])
    op.create_index("ix_tasks_key_created", "tasks", ["key_id", "created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_tasks_key_created", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_request_hash")
        for name in ("files_expired", "expires_at", "request_hash"):
            batch.drop_column(name)
    with op.batch_alter_table("api_keys") as batch:
        for name in ("deleted", "concurrency_limit", "rpm_limit", "allowed_models", "expires_at"):
            batch.drop_column(name)
