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


def log_writes(store: ResultsStore, tables: tuple[str, ...], ops: tuple[str, ...] = ("UPDATE", "DELETE")) -> None:
    """Record every ``ops`` statement's rows of ``tables`` (an UPDATE even when it writes the same values) in
    the table ``writes``: what a data migration touched, read back with :func:`writes`."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE writes (tbl VARCHAR(32) NOT NULL, op VARCHAR(8), row_id INTEGER NOT NULL)"))
        if store.dialect == "postgresql":
            conn.execute(
                sa.text(
                    "CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "INSERT INTO writes VALUES (TG_TABLE_NAME, TG_OP, OLD.id); RETURN NULL; END $$"
                )
            )
        for table in tables:
            for op in ops:
                if store.dialect == "postgresql":
                    ddl = (
                        f"CREATE TRIGGER log_{op}_{table} AFTER {op} ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION log_write()"
                    )
                else:
                    ddl = (
                        f"CREATE TRIGGER log_{op}_{table} AFTER {op} ON {table} "
                        f"BEGIN INSERT INTO writes VALUES ('{table}', '{op}', OLD.id); END;"
                    )
                conn.execute(sa.text(ddl))


def writes(store: ResultsStore) -> list[tuple[str, str, int]]:
    """``(table, operation, row id)`` of every write :func:`log_writes` recorded, sorted."""
    with store.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text("SELECT tbl, op, row_id FROM writes")))
