"""The results database: one API over SQLite (embedded default) and PostgreSQL (production).

The Airflow connection ``devops_results_db`` chooses the database:

* type ``postgres``: the Postgres provider's hook builds the SQLAlchemy URL (host, port, login,
  password, schema = database, extras such as ``sslmode``);
* type ``sqlite``: host = the database file, absolute or relative to ``$AIRFLOW_HOME``;
* no such connection: SQLite at ``$AIRFLOW_HOME/devops_results.db``.

The schema is created and upgraded by the Alembic migrations in ``migrations/``. They run by
themselves the first time a process touches the store, under a lock (a PostgreSQL advisory lock,
or a file lock beside the SQLite file) so that parallel tasks never migrate twice.

Usage in a task::

    store = ResultsStore.from_connection()          # devops_results_db
    store.upsert(schema.project_metrics, rows, keys=["day", "source", "project", "metric"])
    if store.claim_notification(key, "slack", channel):
        ...send...
        store.notification_sent(key, message_ref=ts)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from devops_automation.store import schema

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "devops_results_db"
DEFAULT_SQLITE_FILE = "devops_results.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "devops_automation_alembic_version"
#: Key of the PostgreSQL advisory lock held while migrating (any constant unique to this package).
PG_MIGRATION_LOCK = 0x64_65_76_6F_70_73  # "devops"

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class StoreConfigError(ValueError):
    """The ``devops_results_db`` connection cannot be used as a results database."""


class SchemaVersionError(RuntimeError):
    """The database's schema revision is unknown to this code (it is newer)."""


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def url_from_connection(conn_id: str = DEFAULT_CONN_ID) -> URL:
    """SQLAlchemy URL of the results database named by an Airflow connection (see module doc)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError

    try:
        conn = BaseHook.get_connection(conn_id)
    except (AirflowNotFoundException, AirflowRuntimeError):
        path = airflow_home() / DEFAULT_SQLITE_FILE
        log.info("No connection %r: using the embedded SQLite results database %s", conn_id, path)
        return sqlite_url(path)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=conn_id).sqlalchemy_url
    if conn_type == "sqlite":
        path = Path(conn.host or DEFAULT_SQLITE_FILE).expanduser()
        return sqlite_url(path if path.is_absolute() else airflow_home() / path)
    raise StoreConfigError(
        f"connection {conn_id!r} has type {conn.conn_type!r}; the results store needs type 'postgres' "
        f"(PostgreSQL) or 'sqlite' (host = database file)"
    )


def sqlite_url(path: str | os.PathLike[str]) -> URL:
    return URL.create("sqlite", database=str(Path(path).resolve()))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_engine(url: URL | str, **options: Any) -> Engine:
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **options)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() != "postgresql":
        raise StoreConfigError(f"unsupported results database {url.get_backend_name()!r}: use PostgreSQL or SQLite")
    return sa.create_engine(url, pool_pre_ping=True, **options)


class ResultsStore:
    """Read and write the results tables (:mod:`devops_automation.store.schema`) on either dialect."""

    def __init__(self, url: URL | str, *, auto_migrate: bool = True, **engine_options: Any) -> None:
        self.url = sa.make_url(url)
        self.auto_migrate = auto_migrate
        self._engine_options = engine_options
        self._engine: Engine | None = None

    @classmethod
    def from_connection(cls, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> ResultsStore:
        return cls(url_from_connection(conn_id), **kwargs)

    def __repr__(self) -> str:
        return f"ResultsStore({self.url.render_as_string(hide_password=True)!r})"

    # -- engine and schema ---------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.url, **self._engine_options)
            if self.auto_migrate:
                self.ensure_schema()
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def ensure_schema(self) -> None:
        """Migrate to the newest revision once per process and database."""
        key = self.url.render_as_string(hide_password=False)
        with _migrate_lock:
            if key in _migrated:
                return
            self.migrate()
            _migrated.add(key)

    def _alembic_config(self, connection: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("path_separator", "os")
        cfg.attributes["connection"] = connection
        return cfg

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        engine = self._engine or create_engine(self.url, **self._engine_options)
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert head is not None, "no migrations found"
        return head

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` under the migration lock (safe to call concurrently)."""
        from alembic import command
        from alembic.util.exc import CommandError

        engine = self._engine or create_engine(self.url, **self._engine_options)
        with self._migration_lock(engine) as conn:
            cfg = self._alembic_config(conn)
            try:
                command.upgrade(cfg, revision)
            except CommandError as exc:
                if "Can't locate revision" in str(exc):
                    raise SchemaVersionError(
                        f"the results database {self!r} is at a schema revision this code does not know "
                        f"(newer than {self.head_revision()}): upgrade devops-automation ({exc})"
                    ) from exc
                raise
            conn.commit()
        log.info("Results database %r is at schema revision %s", self, revision)

    @contextlib.contextmanager
    def _migration_lock(self, engine: Engine) -> Iterator[Connection]:
        if self.dialect == "postgresql":
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.rollback()
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK})
                    conn.commit()
            return
        db = self.url.database
        if not db or db == ":memory:":
            with engine.connect() as conn:
                yield conn
            return
        with open(f"{db}.migrate.lock", "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    # -- reading and writing -------------------------------------------------------------------
    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    def _insert(self) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert

    def upsert(
        self,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[str],
        update: Sequence[str] | None = None,
        only_changed: bool = False,
        ignore: Sequence[str] = (),
        conn: Connection | None = None,
    ) -> int:
        """Insert rows, or update the existing row with the same ``keys`` (a unique constraint).

        ``update`` names the columns to overwrite on conflict (default: every column given except the
        keys and ``id``). With ``only_changed`` an existing row is rewritten only when one of those
        columns differs, ``ignore`` (e.g. ``collected_at``) not counted: collecting the same data again
        then writes nothing. Returns the number of rows given.
        """
        if not rows:
            return 0
        insert = self._insert()
        stmt = insert(table)
        columns = list(update) if update is not None else [c for c in rows[0] if c not in keys and c != "id"]
        if columns:
            compared = [c for c in columns if c not in ignore]
            where = (
                sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared))
                if only_changed and compared
                else None
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}, where=where
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        with self._conn(conn) as c:
            c.execute(stmt, [dict(r) for r in rows])
        return len(rows)

    def insert_missing(
        self, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, keys: Sequence[str], conn: Connection | None = None
    ) -> list[tuple[Any, ...]]:
        """Insert only rows whose ``keys`` are not there yet; returns the keys of the rows inserted."""
        if not rows:
            return []
        insert = self._insert()
        stmt = insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(*(table.c[k] for k in keys))
        inserted: list[tuple[Any, ...]] = []
        with self._conn(conn) as c:
            for row in rows:  # RETURNING per row: executemany would not tell which rows were skipped
                got = c.execute(stmt.values(**dict(row))).first()
                if got is not None:
                    inserted.append(tuple(got))
        return inserted

    @contextlib.contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.begin() as c:
                yield c

    # -- notification dedup --------------------------------------------------------------------
    def claim_notification(
        self, dedup_key: str, channel: str, target: str | None = None, *, now: dt.datetime | None = None
    ) -> bool:
        """True when a message with this key may be sent (never sent before, or its last send failed).

        Call before sending; then :meth:`notification_sent` or :meth:`notification_failed`. A re-run of
        the same task (same key) after a successful send gets False and sends nothing.
        """
        t = schema.notifications
        now = now or dt.datetime.now(dt.UTC)
        with self.begin() as conn:
            self.insert_missing(
                t,
                [
                    {
                        "dedup_key": dedup_key,
                        "channel": channel,
                        "target": target,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                    }
                ],
                keys=["dedup_key"],
                conn=conn,
            )
            status = conn.execute(sa.select(t.c.status).where(t.c.dedup_key == dedup_key)).scalar_one()
            if status == "sent":
                return False
            conn.execute(
                sa.update(t).where(t.c.dedup_key == dedup_key).values(attempts=t.c.attempts + 1, status="pending")
            )
            return True

    def notification_sent(
        self, dedup_key: str, message_ref: str | None = None, *, now: dt.datetime | None = None
    ) -> None:
        t = schema.notifications
        with self.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.dedup_key == dedup_key)
                .values(status="sent", message_ref=message_ref, error=None, sent_at=now or dt.datetime.now(dt.UTC))
            )

    def notification_failed(self, dedup_key: str, error: str) -> None:
        t = schema.notifications
        with self.begin() as conn:
            conn.execute(sa.update(t).where(t.c.dedup_key == dedup_key).values(status="failed", error=error[:4000]))

    def pending_notifications(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Notifications claimed but not (yet) delivered: what a later run should retry."""
        t = schema.notifications
        q = sa.select(t).where(t.c.status != "sent").order_by(t.c.id)
        if channel:
            q = q.where(t.c.channel == channel)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


__all__ = [
    "DEFAULT_CONN_ID",
    "ResultsStore",
    "SchemaVersionError",
    "StoreConfigError",
    "create_engine",
    "schema",
    "sqlite_url",
    "url_from_connection",
]
