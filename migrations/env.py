"""Alembic environment: herbx passes an open connection; nothing is read from an ini."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)

with context.begin_transaction():
    context.run_migrations()
