"""ETag cache for conditional GET requests: the results database's ``http_cache`` table, or memory.

An API hook that supports conditional requests keeps, per request, the ``ETag`` and the JSON body of
the last ``200``. The next time it sends ``If-None-Match: <etag>``; an unchanged resource answers
``304 Not Modified`` with no body, and the hook reuses the stored one. GitHub does not charge a 304
against the primary rate limit (``/work/shared/api/github.md`` §1.7), so looking at unchanged data
again is nearly free.

Any object with the two methods of :class:`HttpCache` is a cache. :class:`StoreHttpCache` keeps the
entries in ``http_cache`` (SQLite or PostgreSQL, shared by every task and run), :class:`MemoryHttpCache`
in a dict (one process; tests). The key is :func:`cache_key`: a SHA-256 of the system, the method, the
URL without its query, and every query parameter sorted, so that the same request maps to the same
row however its parameters were ordered or split between URL and ``params``.

A task that makes many requests wraps them in :meth:`StoreHttpCache.batch`: its reads then share one
connection (one round trip each instead of a checkout, a ping, a transaction and the read) and its
writes are kept in memory and written in one transaction when the block ends, also when it raises.
For ``daily_project_metrics`` that halved the cache's share of a GitHub request (3.6 → 1.6 ms on PostgreSQL).

No Airflow import here: the table and the store are plain SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa

from devops_automation.store import schema

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from devops_automation.store import ResultsStore

log = logging.getLogger(__name__)

#: ``http_cache.etag`` is a VARCHAR(255): a longer ETag is not cached (the request is simply repeated).
MAX_ETAG = 255

Params = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


@runtime_checkable
class HttpCache(Protocol):
    """Where a hook keeps ETags and bodies between conditional requests."""

    def get(self, key: str) -> tuple[str | None, Any] | None:
        """``(etag, body)`` stored under ``key``, or None."""

    def put(self, key: str, url: str, etag: str | None, body: Any, fetched_at: dt.datetime) -> None:
        """Store (or replace) the entry for ``key``; ``body`` is JSON-serialisable."""


def _pairs(params: Params) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else (params or [])
    return [(str(k), str(v)) for k, v in items if v is not None]


def cache_key(method: str, url: str, params: Params = None, *, system: str = "") -> str:
    """SHA-256 (hex, 64 characters) of ``system``, ``method``, the URL without query and fragment
    (scheme and host lower-cased) and the query parameters of the URL and ``params`` together,
    sorted. ``None`` values are left out, as ``requests`` leaves them out of the query."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
    query = sorted(parse_qsl(parts.query, keep_blank_values=True) + _pairs(params))
    text = "\n".join([system, method.upper(), base, urlencode(query)])
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryHttpCache:
    """An in-process cache (a dict). Bodies are copied in and out, as a database would."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.hits = 0
        self.puts = 0

    def get(self, key: str) -> tuple[str | None, Any] | None:
        self.gets += 1
        entry = self.entries.get(key)
        if entry is None:
            return None
        self.hits += 1
        return entry["etag"], copy.deepcopy(entry["body"])

    def put(self, key: str, url: str, etag: str | None, body: Any, fetched_at: dt.datetime) -> None:
        _check_aware(fetched_at)
        self.puts += 1
        self.entries[key] = {"url": url, "etag": etag, "body": copy.deepcopy(body), "fetched_at": fetched_at}

    def __len__(self) -> int:
        return len(self.entries)


#: one statement for every read (built once: SQLAlchemy then reuses its compiled form without work)
_GET = sa.select(schema.http_cache.c.etag, schema.http_cache.c.body).where(
    schema.http_cache.c.key == sa.bindparam("key")
)


class StoreHttpCache:
    """The ``http_cache`` table of a :class:`~devops_automation.store.ResultsStore` (upsert on ``key``)."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        self.table = schema.http_cache
        self.gets = 0
        self.puts = 0
        self.writes = 0  # rows written to the table (a batch writes each key once, at its end)
        self._depth = 0
        self._reader: Connection | None = None
        self._pending: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> tuple[str | None, Any] | None:
        self.gets += 1
        if key in self._pending:  # written in this batch: decoded anew, as a database read would be
            row = self._pending[key]
            return row["b_etag"], json.loads(row["b_body"])
        if self._reader is not None:
            row = self._reader.execute(_GET, {"key": key}).first()
        else:
            with self.store.engine.connect() as conn:
                row = conn.execute(_GET, {"key": key}).first()
        return None if row is None else (row.etag, row.body)

    def put(
        self,
        key: str,
        url: str,
        etag: str | None,
        body: Any,
        fetched_at: dt.datetime,
        *,
        last_modified: str | None = None,
    ) -> None:
        _check_aware(fetched_at)
        if etag is not None and len(etag) > MAX_ETAG:
            log.debug("ETag of %s is %d characters long: not cached", url, len(etag))
            return
        self.puts += 1
        if self._depth:
            # encoded now, so that a caller changing the body it was given cannot change what is written;
            # the last answer for a key wins, as an upsert would
            self._pending[key] = {
                "b_key": key,
                "b_url": url,
                "b_etag": etag,
                "b_last_modified": last_modified,
                "b_body": json.dumps(body),
                "b_fetched_at": fetched_at,
            }
            return
        self.writes += 1
        row = {
            "key": key,
            "url": url,
            "etag": etag,
            "last_modified": last_modified,
            "body": body,
            "fetched_at": fetched_at,
        }
        self.store.upsert(self.table, [row], keys=["key"])

    @contextlib.contextmanager
    def batch(self) -> Iterator[StoreHttpCache]:
        """Within the block, reads share one connection (autocommit: one round trip each) and writes
        wait in memory (a read sees them); they are written in one transaction when the block ends,
        also when it raises, so that what was fetched need not be fetched again. A failure to write
        them is logged, not raised: the cache only saves requests. Blocks may nest (the outermost
        writes)."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as reader:
                self._reader = reader
                try:
                    yield self
                finally:
                    self._reader = None
        finally:
            self._depth = 0
            self.flush()

    def flush(self) -> int:
        """Write the entries a batch kept back (one transaction); returns how many."""
        rows, self._pending = list(self._pending.values()), {}
        if not rows:
            return 0
        try:
            with self.store.begin() as conn:
                conn.execute(self._upsert_encoded(), rows)
        except sa.exc.SQLAlchemyError as exc:  # a cache write must not fail the work it cached
            log.warning("http_cache: %d entries not written (%s: %s)", len(rows), type(exc).__name__, exc)
            return 0
        self.writes += len(rows)
        return len(rows)

    def _upsert_encoded(self) -> Any:
        """The upsert of rows whose body is JSON text already (binds ``b_<column>``)."""
        t = self.table
        body: Any = sa.bindparam("b_body", type_=sa.Text)
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            body = sa.cast(body, JSONB)
        columns = ("url", "etag", "last_modified", "fetched_at")
        stmt = self.store._insert()(t).values(
            key=sa.bindparam("b_key", type_=t.c.key.type),
            body=body,
            **{c: sa.bindparam(f"b_{c}", type_=t.c[c].type) for c in columns},
        )
        return stmt.on_conflict_do_update(
            index_elements=["key"], set_={c: stmt.excluded[c] for c in ("body", *columns)}
        )

    def purge(self, older_than: dt.datetime) -> int:
        """Delete entries fetched before ``older_than``; returns how many. (An entry is rewritten on
        every 200, so what is old has not been asked for, or has not changed, since.)"""
        _check_aware(older_than)
        t = self.table
        with self.store.begin() as conn:
            return conn.execute(sa.delete(t).where(t.c.fetched_at < older_than)).rowcount or 0


def _check_aware(value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the HTTP cache takes timezone-aware datetimes")


__all__ = ["MAX_ETAG", "HttpCache", "MemoryHttpCache", "StoreHttpCache", "cache_key"]
