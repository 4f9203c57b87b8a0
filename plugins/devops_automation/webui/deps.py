"""The results store in the API server: the ``devops_results_db`` connection, resolved as the DAGs do.

:meth:`ResultsStore.from_connection` (``store.url_from_connection``) reads the connection through
``airflow.sdk.BaseHook.get_connection``; outside a task (the API server has no task context) that
goes to the secrets backends the process has (environment variables, then the metadata database), so
the DAGs and the view read the same database: PostgreSQL for a ``postgres`` connection, the SQLite file
of a ``sqlite`` one, ``$AIRFLOW_HOME/devops_results.db`` without one.

One :class:`StoreProvider` per app keeps one engine (a connection pool) and looks at the connection again
every :data:`RECHECK_S` seconds: an edited connection is picked up without a restart (the old engine is
disposed). The first touch migrates an empty or older database like any task would (under the store's
migration lock), so a fresh deployment shows empty lists rather than errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from devops_automation.store import DEFAULT_CONN_ID, ResultsStore, url_from_connection

log = logging.getLogger(__name__)

RECHECK_S = 300.0


class StoreUnavailable(RuntimeError):
    """The results database cannot be opened (answered with 503; the message names no secret)."""


class StoreProvider:
    """``provider()`` -> the :class:`ResultsStore` of ``conn_id`` (or the fixed ``store`` given)."""

    def __init__(
        self,
        conn_id: str = DEFAULT_CONN_ID,
        *,
        store: ResultsStore | None = None,
        recheck_s: float = RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn_id = conn_id
        self.fixed = store is not None
        self._store = store
        self._recheck_s = recheck_s
        self._clock = clock
        self._next_check = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> ResultsStore:
        if self.fixed:
            assert self._store is not None
            return self._store
        with self._lock:
            now = self._clock()
            if self._store is not None and now < self._next_check:
                return self._store
            try:
                url = url_from_connection(self.conn_id)
            except Exception as exc:
                if self._store is not None:  # keep serving the database we have
                    log.warning("Looking up connection %r failed (%s); keeping %r", self.conn_id, exc, self._store)
                    self._next_check = now + self._recheck_s
                    return self._store
                raise StoreUnavailable(
                    f"the results database (connection {self.conn_id!r}) cannot be used: {type(exc).__name__}"
                ) from exc
            key = url.render_as_string(hide_password=False)
            if self._store is None or self._store.url.render_as_string(hide_password=False) != key:
                old, self._store = self._store, ResultsStore(url)
                if old is not None:
                    log.info("Connection %r changed: now reading %r", self.conn_id, self._store)
                    old.dispose()
            self._next_check = now + self._recheck_s
            return self._store

    def dispose(self) -> None:
        with self._lock:
            if self._store is not None and not self.fixed:
                self._store.dispose()
                self._store = None
