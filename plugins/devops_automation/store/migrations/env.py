"""Alembic environment of the results database.

Run only through :meth:`devops_automation.store.ResultsStore.migrate`, which passes an open connection
(holding the migration lock) in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from devops_automation.store.schema import metadata

VERSION_TABLE = "devops_automation_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - misuse guard
    raise RuntimeError("run migrations through ResultsStore.migrate(), which provides the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite needs batch mode
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
