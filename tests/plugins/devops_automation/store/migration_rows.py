"""Reading a results database's rows back in the data-migration tests (0008, 0009)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from devops_automation.store import ResultsStore


def raw(store: ResultsStore, table: str) -> dict[int, tuple]:
    """Every row as the database driver gives it (no column types: SQLite's JSON as its stored text)."""
    with store.engine.connect() as conn:
        return {r[0]: tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))}


def typed(store: ResultsStore, table: sa.Table) -> dict[int, dict[str, Any]]:
    """Every row by id, read through the table's column types."""
    with store.engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()}


def downgrade(store: ResultsStore, revision: str) -> None:
    """Downgrade the results database to ``revision`` (the store itself only migrates up)."""
    from alembic import command

    with store.engine.connect() as conn:
        command.downgrade(store._alembic_config(conn), revision)
        conn.commit()
    assert store.current_revision() == revision
