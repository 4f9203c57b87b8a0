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

No Airflow import here: the table and the store are plain SQLAlchemy.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa

from devops_automation.store import schema

if TYPE_CHECKING:
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


class StoreHttpCache:
    """The ``http_cache`` table of a :class:`~devops_automation.store.ResultsStore` (upsert on ``key``)."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        self.table = schema.http_cache

    def get(self, key: str) -> tuple[str | None, Any] | None:
        t = self.table
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.etag, t.c.body).where(t.c.key == key)).first()
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
        row = {
            "key": key,
            "url": url,
            "etag": etag,
            "last_modified": last_modified,
            "body": body,
            "fetched_at": fetched_at,
        }
        self.store.upsert(self.table, [row], keys=["key"])

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
