"""Alembic environment: reelgate runs migrations itself (`reelgate migrate`, `serve` start-up) and
hands the open connection in through `config.attributes["connection"]`."""

from alembic import context

from reelgate.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
