"""CI figures from the results store: any window and filter, the previous window beside it, and the
stored per-day rows of ``ci_daily``.

SQLAlchemy Core only (no Airflow): every function takes a :class:`~devops_automation.store.ResultsStore`.
The database selects the rows by time range and filters through its indexes (``ci_runs``
``(finished_at)`` and ``(provider, repo, finished_at)``, ``ci_jobs (provider, repo, run_id)``), in one
query per table, fetching only the columns the figures read; :mod:`.figures` decides which attempt is
final and computes every figure from those rows in one pass, so SQLite and PostgreSQL give the same
numbers.

What is loaded for a window ``[start, end)`` (definitions §3: "completed runs whose final attempt
finished inside the window"):

* every completed attempt that finished inside the window, with its jobs; a run with a completed
  attempt that finished after ``end`` is dropped (its final attempt is in a later window), and the
  earlier attempts of a run that finished before ``start`` are fetched by the run's key;
* for red streaks, per (provider, repo, workflow, branch), the completed attempts between
  ``history_start`` and ``start`` from the key's last success on (all of them when it has none): enough
  to know when a streak open at ``start`` began without reading the whole history. (The last success
  is chosen per attempt in SQL; a successful attempt re-run red afterwards is a rare case in which a
  streak's start is then marked unknown rather than found.)
* deployments from ``history_start`` on (earlier SHAs for rollbacks, later ones for the change failure
  rate), and the failure categories ``ci_failure_triage`` stored for the failed GitLab jobs of the
  window (``failure_analyses``, by job id, the latest analysis).

Filters (``provider``, ``repos``, ``branches``, ``workflows``) are applied in SQL (they are the same for
every attempt of a run); ``actors`` to the final attempt of each run (who started it); deployments
are filtered by provider and repository only.

Speed (``benchmarks/analytics.py``: a week beside the previous one over a million runs): on PostgreSQL
the run, job and history queries run on connections of their own, the rows of one read while the next
is worked on (:func:`reading`), rows come from the driver without SQLAlchemy's per-value processing
(times made UTC here), and each transaction gets :data:`PG_WORK_MEM`; Python's cyclic garbage collector
is paused while a summary or a day's rows are computed. None of it changes a figure: the tests compare
PostgreSQL with SQLite and with the figures of every row (and as a database returns rows in no fixed
order, no figure depends on it: re-run time is summed exactly).

Many weeks at once (a report's history, :mod:`.series`): :func:`reading` gives the rows as tuples in
batches (``stream_runs``: a week of runs at a time, each run with one attempt as it comes); with
``jobs_in_one_query`` the jobs of the whole range come from one hash join streamed through a server-side
cursor, cheaper than a lookup per attempt when the range holds most of the table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from devops_automation.ci_analytics.figures import (
    DEFAULT_ENVIRONMENTS,
    FAILED,
    GROUP_FIELDS,
    JOB_FIELDS,
    VERDICT,
    Figures,
    RunIndex,
    compute_windows,
    dora_active,
)
from devops_automation.store import schema

if TYPE_CHECKING:
    from devops_automation.store import ResultsStore

F = TypeVar("F", bound=Callable[..., Any])

#: How far before the (earliest) window red streaks and deployments are looked up. A streak older than
#: this is listed with ``start_known: False`` and left out of MTTR.
DEFAULT_HISTORY = dt.timedelta(days=28)
#: ``workflow`` and ``branch`` of the repository-wide ``ci_daily`` row (all its runs, and DORA).
ALL = "*"
#: ``group_by`` names of :func:`window_summary` and the fields they group on (a repository is named
#: with its provider).
GROUPS: Mapping[str, tuple[str, ...]] = {
    "provider": ("provider",),
    "repo": ("provider", "repo"),
    "workflow": ("workflow",),
    "branch": ("branch",),
}
DAILY_KEYS = ("day", "provider", "repo", "workflow", "branch")
#: Rows per statement when runs are fetched by key or id.
BATCH = 500
#: Job ids per statement when failure categories are looked up.
CATEGORY_BATCH = 2000
#: Job records made tuples at a time (:func:`reading`), and the span of finish times of the attempts whose
#: jobs are read by one query (a few hundred thousand jobs at most in memory at a time).
JOB_BATCH = 20_000
JOB_SPAN = dt.timedelta(days=7)
READ_AHEAD = 3
#: PostgreSQL ``work_mem`` for the statements of one summary (``SET LOCAL``: that transaction only). The
#: default 4 MB makes the history and job queries sort on disk; 64 MB keeps them in memory.
PG_WORK_MEM = "64MB"

RUN_COLUMNS = (
    "id",
    "provider",
    "repo",
    "run_id",
    "attempt",
    "run_number",
    "workflow",
    "branch",
    "sha",
    "actor",
    "status",
    "finished_at",
    "duration_s",
    "queue_s",
    "url",
)
HISTORY_COLUMNS = (
    "provider",
    "repo",
    "run_id",
    "attempt",
    "run_number",
    "workflow",
    "branch",
    "actor",
    "status",
    "finished_at",
    "url",
)
#: Job records are ``(run_row, *JOB_FIELDS)``: the ``ci_runs.id`` of their attempt instead of the run's key.
JOB_COLUMNS = JOB_FIELDS
_JOB_ID = 1 + JOB_FIELDS.index("job_id")
_JOB_STATUS = 1 + JOB_FIELDS.index("status")
DEPLOYMENT_COLUMNS = (
    "provider",
    "repo",
    "deployment_id",
    "environment",
    "sha",
    "status",
    "created_at",
    "finished_at",
    "commits",
)


@dataclasses.dataclass
class Rows:
    """What :func:`load_rows` read, for :mod:`.figures`: :meth:`index` builds the run index."""

    start: dt.datetime
    end: dt.datetime
    history_start: dt.datetime | None
    #: attempt rows (dicts of :data:`RUN_COLUMNS`, or :data:`HISTORY_COLUMNS` for history rows)
    runs: list[dict[str, Any]]
    #: job records ``(run_row, *figures.JOB_FIELDS)``: tuples, no dict per job
    jobs: list[Sequence[Any]]
    deployments: list[dict[str, Any]]
    #: ``("gitlab", job_id)`` -> failure category from ``ci_failure_triage`` (its latest analysis).
    categories: dict[tuple[str, str], str]

    def index(self) -> RunIndex:
        return RunIndex(self.runs, job_records=self.jobs)


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _completed(t: Any) -> Any:
    """SQL form of :func:`.figures.is_completed`."""
    return sa.and_(t.c.finished_at.is_not(None), t.c.status.is_not(None), t.c.status != "running")


def _filters(
    t: Any, *, provider: str | None, repos: list[str] | None, branches: list[str] | None, workflows: list[str] | None
) -> list[Any]:
    where = []
    if provider is not None:
        where.append(t.c.provider == provider)
    for column, values in (("repo", repos), ("branch", branches), ("workflow", workflows)):
        if values is not None:
            where.append(t.c[column].in_(values))
    return where


def _job_column(jobs: Any, name: str) -> Any:
    """A job column as the figures read it: the job id only of a failed job (failure categories are
    looked up by it) and the duration only of a retried one (GitLab re-run minutes); ``NULL`` otherwise,
    which the driver gives as ``None`` without building a value for each of hundreds of thousands of
    jobs."""
    if name == "job_id":
        return sa.case((jobs.c.status.in_(sorted(FAILED)), jobs.c.job_id)).label("job_id")
    if name == "duration_s":
        return sa.case((jobs.c.retried.is_(True), jobs.c.duration_s)).label("duration_s")
    return jobs.c[name]


def _same_attempt(runs: Any, jobs: Any) -> Any:
    return sa.and_(
        jobs.c.provider == runs.c.provider,
        jobs.c.repo == runs.c.repo,
        jobs.c.run_id == runs.c.run_id,
        jobs.c.attempt == runs.c.attempt,
    )


def _dicts(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]  # all(): one fetch, not one per row


def _tune(conn: sa.Connection, *, join_by_index: bool = False) -> None:
    """PostgreSQL: :data:`PG_WORK_MEM` and UTC for this transaction. ``join_by_index``: the jobs of the window's
    attempts are joined through ``ix_ci_jobs_run`` (a nested loop) rather than by hashing every job:
    the planner underestimates the rows of the four-column join and scans the whole ``ci_jobs`` table,
    twice as slow on a million runs."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
        # times come from the driver in UTC already: :func:`_fetch_dicts` then has nothing to convert
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        if join_by_index:
            conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
    """Every row of ``query`` as a tuple. On PostgreSQL they are taken from the driver's cursor as it
    gives them: SQLAlchemy's per-value result processing is skipped (about twice as fast on a million
    rows), which leaves every value as the column types give it except the UTC times, which
    :func:`_fetch_dicts` normalises; elsewhere (SQLite stores times as text) through SQLAlchemy."""
    result = conn.execute(query)
    if conn.dialect.name != "postgresql":
        return result.all()
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def driver_rows(conn: sa.Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
    """Every row of ``query`` as a tuple, without SQLAlchemy's per-value processing on PostgreSQL (see
    :func:`_rows`): for columns whose values the driver already gives as the column types do (text,
    numbers, dates, booleans; not :class:`.schema.UTCDateTime`, see :func:`_fetch_tuples`)."""
    return _rows(conn, query)


def _next_batch(result: sa.CursorResult[Any]) -> list[Sequence[Any]]:
    """Up to :data:`JOB_BATCH` more rows of a PostgreSQL ``result``, from the driver as it gives them (see
    :func:`_rows`)."""
    return cast(list[Sequence[Any]], result.cursor.fetchmany(JOB_BATCH))


def _fetch_tuples(conn: sa.Connection, query: sa.Select[Any]) -> list[Sequence[Any]]:
    """The rows of ``query`` as tuples (in the order of its columns), times as aware UTC datetimes (what
    :class:`.schema.UTCDateTime` gives)."""
    times = [i for i, c in enumerate(query.selected_columns) if isinstance(c.type, schema.UTCDateTime)]
    return _utc(conn, _rows(conn, query), times)


def _utc(conn: sa.Connection, rows: list[Sequence[Any]], times: Sequence[int]) -> list[Sequence[Any]]:
    """PostgreSQL's rows from the driver with the times at positions ``times`` as aware UTC datetimes (a row
    is copied only when one of them is not in UTC yet: with :func:`_tune`'s time zone, none is)."""
    if conn.dialect.name != "postgresql" or not times:
        return rows
    # (one query's times all come in the session's time zone: in UTC already when the first one is)
    first = next((row[i] for row in rows for i in times if row[i] is not None), None)
    if first is None or first.tzinfo is dt.UTC:
        return rows
    for n, row in enumerate(rows):
        for i in times:
            value = row[i]
            if value is not None and value.tzinfo is not dt.UTC:
                utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
                row = rows[n] = (*row[:i], utc, *row[i + 1 :])
    return rows


def _fetch_dicts(conn: sa.Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """The rows of ``query`` as dicts, times as aware UTC datetimes (what :class:`.schema.UTCDateTime`
    gives)."""
    keys = tuple(c.key for c in query.selected_columns)
    return [dict(zip(keys, row, strict=True)) for row in _fetch_tuples(conn, query)]


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["provider"], row["repo"], row["run_id"])


#: Positions in a run tuple of :data:`RUN_COLUMNS`.
_R = {name: i for i, name in enumerate(RUN_COLUMNS)}
_R_ID, _R_PROVIDER, _R_REPO, _R_RUN_ID, _R_ATTEMPT, _R_FINISHED = (
    _R[c] for c in ("id", "provider", "repo", "run_id", "attempt", "finished_at")
)


@dataclasses.dataclass
class RowTuples:
    """What :func:`reading` reads: the rows of :func:`load_rows` as tuples, no dict per row (for
    :mod:`.series`, which reads hundreds of thousands of them)."""

    start: dt.datetime
    end: dt.datetime
    history_start: dt.datetime | None
    #: attempts in :data:`RUN_COLUMNS` order, in batches: those that finished in the window, of runs that
    #: have no other (each row is a run)
    runs: Iterator[list[Sequence[Any]]]
    #: once ``runs`` are read: the attempts of the other runs that finished in the window, and their earlier
    #: attempts (:data:`RUN_COLUMNS` order)
    several: list[Sequence[Any]]
    #: once ``runs`` are read: attempts in :data:`HISTORY_COLUMNS` order, the history of other runs, for red
    #: streaks
    history: list[Sequence[Any]]
    #: job records ``(run_row, *figures.JOB_FIELDS)`` in lists of up to :data:`JOB_BATCH`, as they are read
    #: (once, inside :func:`reading`'s ``with``)
    jobs: Iterator[list[Sequence[Any]]]
    deployments: list[dict[str, Any]]
    #: the connection they are read on (open inside the ``with``)
    conn: sa.Connection
    #: ``(provider, repo, run_id)`` of the runs left out because an attempt completed at or after ``end``
    superseded: set[tuple[str, str, str]]
    #: the filters the rows were selected with (``provider``, ``repos``, ``branches``, ``workflows``)
    filters: dict[str, Any]


def load_rows(
    store: ResultsStore,
    *,
    start: dt.datetime,
    end: dt.datetime,
    history_start: dt.datetime | None = None,
    repos: str | Iterable[str] | None = None,
    branches: str | Iterable[str] | None = None,
    workflows: str | Iterable[str] | None = None,
    actors: str | Iterable[str] | None = None,
    provider: str | None = None,
    deployments_until: dt.datetime | None = None,
) -> Rows:
    """The rows the figures of ``[start, end)`` need (see the module docstring).

    ``history_start``: how far back red streaks and deployments are read (``None``: not before
    ``start``). ``deployments_until``: read deployments only before this time (``None``: all of them
    from ``history_start`` on).
    """
    with reading(
        store,
        start=start,
        end=end,
        history_start=history_start,
        repos=repos,
        branches=branches,
        workflows=workflows,
        provider=provider,
        deployments_until=deployments_until,
    ) as got:
        rows = [row for batch in got.runs for row in batch]
        rows += got.several
        jobs = [job for batch in got.jobs for job in batch]
        categories = _load_categories(got.conn, rows, jobs)
    runs = [dict(zip(RUN_COLUMNS, row, strict=True)) for row in rows]
    runs += [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in got.history]
    actor_list = _as_list(actors)
    if actor_list is not None:
        runs = _final_actor_in(runs, set(actor_list))
    return Rows(got.start, got.end, got.history_start, runs, jobs, got.deployments, categories)


@contextlib.contextmanager
def reading(
    store: ResultsStore,
    *,
    start: dt.datetime,
    end: dt.datetime,
    history_start: dt.datetime | None = None,
    repos: str | Iterable[str] | None = None,
    branches: str | Iterable[str] | None = None,
    workflows: str | Iterable[str] | None = None,
    provider: str | None = None,
    deployments_until: dt.datetime | None = None,
    job_durations_from: dt.datetime | None = None,
    jobs_in_one_query: bool = False,
    failed_details_only: bool = False,
    stream_runs: bool = False,
) -> Iterator[RowTuples]:
    """The rows of :func:`load_rows` (without the ``actors`` filter and the failure categories, which
    :func:`load_categories` reads for the jobs that need them) as tuples, in batches: the attempts that
    finished in ``[start, end)``, then (``several``) the earlier attempts of their runs; then the jobs.
    Read ``runs``, then ``jobs``, inside the ``with``; ``several`` and ``history`` are there once ``runs``
    are read.

    ``stream_runs`` (for a range of weeks): the runs that have no other attempt come a :data:`JOB_SPAN` of
    finish times at a time, as they are read (on PostgreSQL the driver holds one span's answer at a time,
    besides the one read meanwhile: :meth:`_Later.batches`), each row a run; the runs with an attempt
    other than 1 in ``[start, end)`` are all in ``several``, with their earlier attempts.

    ``job_durations_from``: each job record gets a last value, the job's ``duration_s`` when its attempt
    finished at or after that time (else ``None``; the records' ``duration_s`` is only that of retried
    jobs). ``jobs_in_one_query``: read the jobs of ``[start, end)`` with one query (:meth:`_Later.stream`),
    for a range that holds most of the table (weeks of a report): the server joins them by hashing, not
    by an index lookup per attempt (a week at a time), several times cheaper there.
    ``failed_details_only``: ``url`` and ``actor`` of an attempt only when it failed or timed out
    (``None`` otherwise), all the figures read of them but the ``actors`` filter of :func:`load_rows`."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ValueError(f"empty window: start {start} is not before end {end}")
    history_start = _aware(history_start, "history_start") if history_start is not None else None
    if history_start is not None and history_start > start:
        raise ValueError(f"history_start {history_start} is after start {start}")
    filters = {
        "provider": provider,
        "repos": _as_list(repos),
        "branches": _as_list(branches),
        "workflows": _as_list(workflows),
    }
    r = schema.ci_runs
    jobs_of_attempts = _jobs_of_attempts()
    if job_durations_from is not None:
        since = _aware(job_durations_from, "job_durations_from")
        jobs_of_attempts = jobs_of_attempts.add_columns(
            sa.case((r.c.finished_at >= since, schema.ci_jobs.c.duration_s)).label("attempt_duration")
        )
    spans = [start + n * JOB_SPAN for n in range(int((end - start) / JOB_SPAN) + 1) if start + n * JOB_SPAN < end]
    bounds = list(zip(spans, [*spans[1:], end], strict=True)) if stream_runs else [(start, end)]

    def in_span(low: dt.datetime, high: dt.datetime) -> list[Any]:
        return [_completed(r), r.c.finished_at >= low, r.c.finished_at < high, *_filters(r, **filters)]

    several_rows: list[Sequence[Any]] = []
    history: list[Sequence[Any]] = []
    earlier: list[Sequence[Any]] = []
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(store.engine.connect())
        _tune(conn)
        # PostgreSQL: the queries that need nothing from the others run meanwhile on connections of their
        # own (the server works on them while the rows before are read here)
        later = _Later(store, conn, stack)
        look_back = history_start is not None and history_start < start
        history_rows = later.tuples(_history_query(history_start, start, filters)) if look_back else None
        columns = {c: r.c[c] for c in RUN_COLUMNS}
        if failed_details_only:
            for name in ("url", "actor"):
                columns[name] = sa.case((r.c.status.in_(sorted(FAILED)), r.c[name])).label(name)
        runs_query = sa.select(*columns.values())
        runs_queries = [runs_query.where(*in_span(low, high)) for low, high in bounds]
        if stream_runs:  # (a week's runs are quickly read: here, not held by a thread meanwhile)

            def runs_in_range() -> Iterator[list[Sequence[Any]]]:
                for query in runs_queries:
                    rows = _rows(conn, query)
                    for offset in range(0, len(rows), JOB_BATCH):
                        yield rows[offset : offset + JOB_BATCH]
                    del rows

        else:
            runs_in_range = later.batches(runs_queries)
        if jobs_in_one_query:
            jobs_in_range = later.stream(jobs_of_attempts.where(*in_span(start, end)))
        else:
            jobs_in_range = later.batches(
                [jobs_of_attempts.where(*in_span(low, high)) for low, high in bounds], join_by_index=True
            )
        superseded = _superseded(conn, end, filters)
        several = _several_attempts(conn, start, end, filters) if stream_runs else None
        deployments = _load_deployments(
            conn, since=history_start or start, until=deployments_until, provider=provider, repos=filters["repos"]
        )

        def runs() -> Iterator[list[Sequence[Any]]]:
            got = history_rows() if history_rows is not None else []
            h_provider, h_repo, h_run_id = (HISTORY_COLUMNS.index(c) for c in ("provider", "repo", "run_id"))
            history_ids = {row[h_run_id] for row in got}
            window_keys: set[tuple[str, str, str]] = set()  # of the history's runs: runs of the window
            # a text test first: no key tuple for most rows
            looked_at = {run_id for _, _, run_id in superseded | (several or set())} | history_ids
            held: list[Sequence[Any]] = []  # the attempts of runs with several (without stream_runs: all)
            for batch in runs_in_range():
                batch = _utc(conn, batch, (_R_FINISHED,))
                single = []
                for row in batch:
                    if row[_R_RUN_ID] in looked_at:
                        key = (row[_R_PROVIDER], row[_R_REPO], row[_R_RUN_ID])
                        if key in superseded:
                            continue
                        if row[_R_RUN_ID] in history_ids:
                            window_keys.add(key)
                        if several is not None and key in several:
                            held.append(row)
                            continue
                    single.append(row)
                if several is None:
                    held += single
                if single:
                    yield single
            earlier.extend(_earlier_attempts(conn, held))
            several_rows.extend(earlier if several is None else held + earlier)
            for row in got:
                key = (row[h_provider], row[h_repo], row[h_run_id])
                if key not in window_keys and key not in superseded:
                    history.append(row)

        def jobs() -> Iterator[list[Sequence[Any]]]:
            yield from jobs_in_range()
            for ids in _batches([row[_R_ID] for row in earlier]):
                yield _rows(conn, jobs_of_attempts.where(r.c.id.in_(ids)))

        yield RowTuples(
            start, end, history_start, runs(), several_rows, history, jobs(), deployments, conn, superseded, filters
        )


def _several_attempts(
    conn: sa.Connection, start: dt.datetime, end: dt.datetime, filters: Mapping[str, Any]
) -> set[tuple[str, str, str]]:
    """Runs with a completed attempt other than 1 in ``[start, end)``: the only ones that can have more than
    one attempt among the rows read, or miss one (:func:`_earlier_attempts`)."""
    r = schema.ci_runs
    q = (
        sa.select(r.c.provider, r.c.repo, r.c.run_id)
        .where(
            _completed(r), r.c.attempt != 1, r.c.finished_at >= start, r.c.finished_at < end, *_filters(r, **filters)
        )
        .distinct()
    )
    return {(p, repo, run_id) for p, repo, run_id in conn.execute(q)}


def _jobs_of_attempts() -> sa.Select[Any]:
    """Job records ``(run_row, *JOB_FIELDS)`` of attempts (add a ``where`` on ``ci_runs``)."""
    r, j = schema.ci_runs, schema.ci_jobs
    job_columns = (r.c.id.label("run_row"), *(_job_column(j, c) for c in JOB_COLUMNS))
    return sa.select(*job_columns).select_from(r.join(j, _same_attempt(r, j)))


def superseded_job_durations(got: RowTuples, start: dt.datetime, end: dt.datetime) -> list[Sequence[Any]]:
    """``(provider, repo, workflow, job name, duration_s, finished_at)`` of the jobs with a verdict and a
    duration of the attempts of :attr:`RowTuples.superseded` runs that completed in ``[start, end)`` (the
    attempts :func:`reading` leaves out), on ``got.conn``."""
    r, j = schema.ci_runs, schema.ci_jobs
    query = (
        sa.select(r.c.provider, r.c.repo, r.c.workflow, j.c.name, j.c.duration_s, r.c.finished_at)
        .select_from(r.join(j, _same_attempt(r, j)))
        .where(
            _completed(r),
            r.c.finished_at >= start,
            r.c.finished_at < end,
            j.c.status.in_(sorted(VERDICT)),
            j.c.duration_s.is_not(None),
            *_filters(r, **got.filters),
        )
    )
    found: list[Sequence[Any]] = []
    for keys in _batches(sorted(got.superseded)):
        found += _fetch_tuples(got.conn, query.where(sa.tuple_(r.c.provider, r.c.repo, r.c.run_id).in_(list(keys))))
    return found


def load_categories(
    conn: sa.Connection, runs: Iterable[Sequence[Any]], jobs: Iterable[Sequence[Any]]
) -> dict[tuple[str, str], str]:
    """The failure categories of :attr:`Rows.categories` for some of the runs (tuples of
    :data:`RUN_COLUMNS`) and job records of :func:`reading` (on its ``conn``)."""
    return _load_categories(conn, runs, jobs)


def _superseded(conn: sa.Connection, end: dt.datetime, filters: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """Runs with an attempt that completed at or after ``end``: their final attempt is not before ``end``.

    Only re-run attempts (attempt > 1) of runs created before ``end`` can be that."""
    r = schema.ci_runs
    q = (
        sa.select(r.c.provider, r.c.repo, r.c.run_id)
        .where(
            _completed(r),
            r.c.attempt > 1,
            r.c.finished_at >= end,
            sa.or_(r.c.created_at < end, r.c.created_at.is_(None)),
            *_filters(r, **filters),
        )
        .distinct()
    )
    return {(p, repo, run_id) for p, repo, run_id in conn.execute(q)}


def _earlier_attempts(conn: sa.Connection, runs: list[Sequence[Any]]) -> list[Sequence[Any]]:
    """The completed attempts, not among ``runs`` (tuples of :data:`RUN_COLUMNS`), of runs whose attempts
    there are not 1, 2, ... n.

    Only a run with an attempt other than 1 can miss one: the others are not looked at (most runs)."""
    candidates = {row[_R_RUN_ID] for row in runs if row[_R_ATTEMPT] != 1}
    numbers: dict[tuple[str, str, str], set[int]] = {}
    for row in runs:
        if row[_R_RUN_ID] in candidates:
            numbers.setdefault((row[_R_PROVIDER], row[_R_REPO], row[_R_RUN_ID]), set()).add(row[_R_ATTEMPT])
    wanted = [key for key, seen in numbers.items() if max(seen) > len(seen)]
    r = schema.ci_runs
    found: list[Sequence[Any]] = []
    for keys in _batches(wanted):
        q = sa.select(*(r.c[c] for c in RUN_COLUMNS)).where(
            _completed(r), sa.tuple_(r.c.provider, r.c.repo, r.c.run_id).in_(list(keys))
        )
        found += [
            row
            for row in _fetch_tuples(conn, q)
            if row[_R_ATTEMPT] not in numbers[(row[_R_PROVIDER], row[_R_REPO], row[_R_RUN_ID])]
        ]
    return found


def _load_categories(
    conn: sa.Connection, runs: Iterable[Sequence[Any]], jobs: Iterable[Sequence[Any]]
) -> dict[tuple[str, str], str]:
    """``("gitlab", job_id)`` -> the category ``ci_failure_triage`` gave each failed GitLab job of ``jobs``
    (its latest analysis; an analysis filed under another project than the job's is not taken); ``runs``
    are tuples of :data:`RUN_COLUMNS`.

    Looked up by job id, once the jobs are read: a few failed jobs, not a join over every job."""
    repo_of = {row[_R_ID]: row[_R_REPO] for row in runs if row[_R_PROVIDER] == "gitlab" and row[_R_ID] is not None}
    if not repo_of:
        return {}
    failed: dict[str, str] = {}
    for record in jobs:
        repo = repo_of.get(record[0])
        if repo is not None and record[_JOB_STATUS] in FAILED:
            failed[str(record[_JOB_ID])] = repo
    fa, fe = schema.failure_analyses, schema.failure_events
    found: list[Sequence[Any]] = []
    for ids in _batches(sorted(failed), CATEGORY_BATCH):
        q = (
            sa.select(fa.c.job_id, fe.c.project_path, fa.c.category, fa.c.created_at, fa.c.id)
            .select_from(fa.join(fe, fe.c.id == fa.c.event_id))
            .where(fa.c.job_id.in_(ids), fe.c.provider == "gitlab")
        )
        found += conn.execute(q).all()
    found.sort(key=lambda row: (row[3], row[4]))  # oldest analysis first: the latest one wins below
    return {
        ("gitlab", job_id): category
        for job_id, project_path, category, _, _ in found
        if project_path is None or project_path == failed[job_id]
    }


class _Later:
    """Queries started now and read later. On PostgreSQL each runs on a connection of its own in a
    thread (the pool is closed with ``stack``); elsewhere on ``conn`` when its result is asked for.
    ``rows(query)`` and ``tuples(query)`` return a function that gives the result, ``batches(queries)``
    and ``stream(query)`` one that gives an iterator of lists of rows."""

    def __init__(self, store: ResultsStore, conn: sa.Connection, stack: contextlib.ExitStack) -> None:
        self.store = store
        self.conn = conn
        self.stack = stack
        # (three threads: a stream's reader holds one as long as it is read, a query must not wait behind it)
        self.pool = stack.enter_context(ThreadPoolExecutor(3)) if conn.dialect.name == "postgresql" else None

    def _run(self, fetch: Any, query: sa.Select[Any], join_by_index: bool) -> Any:
        with self.store.engine.connect() as conn:
            _tune(conn, join_by_index=join_by_index)
            return fetch(conn, query)

    def _start(self, fetch: Any, query: sa.Select[Any], join_by_index: bool = False) -> Any:
        if self.pool is None:
            return lambda: fetch(self.conn, query)
        return self.pool.submit(self._run, fetch, query, join_by_index).result

    def rows(self, query: sa.Select[Any], *, join_by_index: bool = False) -> Any:
        """``join_by_index``: see :func:`_tune`."""
        return self._start(_rows, query, join_by_index)

    def batches(self, queries: Sequence[sa.Select[Any]], *, join_by_index: bool = False) -> Any:
        """The rows of each query in turn, in lists of up to :data:`JOB_BATCH`. On PostgreSQL each query
        runs in a thread on one of two connections while the rows of the one before are read (the
        server may use its parallel plans; only two answers are held at a time), the first one from
        now on."""
        if self.pool is None:

            def read_here() -> Iterator[list[Sequence[Any]]]:
                for query in queries:
                    result = self.conn.execute(query)
                    while batch := result.fetchmany(JOB_BATCH):
                        yield batch

            return read_here
        conns = [self.stack.enter_context(self.store.engine.connect()) for _ in queries[:2]]

        def execute(n: int) -> Any:
            conn = conns[n % 2]
            if n < 2:
                _tune(conn, join_by_index=join_by_index)
            return conn.execute(queries[n])

        running = [self.pool.submit(execute, 0)] if queries else []
        self.stack.callback(lambda: [future.exception() for future in running])  # (before the connections close)

        def read() -> Iterator[list[Sequence[Any]]]:
            for n in range(len(queries)):
                result = running[-1].result()
                if n + 1 < len(queries):
                    running.append(self.pool.submit(execute, n + 1))
                try:
                    while batch := _next_batch(result):
                        yield batch
                finally:
                    result.close()

        return read

    def tuples(self, query: sa.Select[Any]) -> Any:
        return self._start(_fetch_tuples, query)

    def stream(self, query: sa.Select[Any]) -> Any:
        """The rows of one big query in lists of up to :data:`JOB_BATCH`. On PostgreSQL through a
        server-side cursor that a thread reads :data:`READ_AHEAD` lists ahead (the server keeps working
        while the rows are used; only those lists are in memory), planned for all its rows
        (``cursor_tuple_fraction`` 1: a hash join over a large range, not the nested loop that gives the
        first rows soonest); from now on."""
        if self.pool is None:

            def read_here() -> Iterator[list[Sequence[Any]]]:
                result = self.conn.execute(query)
                while batch := result.fetchmany(JOB_BATCH):
                    yield batch

            return read_here
        conn = self.stack.enter_context(self.store.engine.connect())
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        ahead: queue.Queue[Any] = queue.Queue(READ_AHEAD)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:  # (its error is raised by the reader, through ``done``)
            _tune(conn)
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1")
            with conn.connection.driver_connection.cursor(name="devops_stream") as cursor:
                cursor.execute(str(compiled), compiled.params)
                while put(batch := cursor.fetchmany(JOB_BATCH)) and batch:  # (the last one empty)
                    pass

        done = self.pool.submit(produce)

        def finish() -> None:  # before the connection is closed: stop the thread and wait for it
            stop.set()
            done.exception()

        self.stack.callback(finish)

        def read() -> Iterator[list[Sequence[Any]]]:
            while True:
                try:
                    batch = ahead.get(timeout=0.1)
                except queue.Empty:
                    if done.done():
                        done.result()  # the thread's error
                        if ahead.empty():
                            return
                    continue
                if not batch:
                    return
                yield batch

        return read


def _history_query(history_start: dt.datetime, start: dt.datetime, filters: Mapping[str, Any]) -> sa.Select[Any]:
    """Completed attempts in ``[history_start, start)``: per streak key only from its last successful
    attempt on (everything since ``history_start`` for a key without one).

    Every completed attempt, not only those with a verdict: a run whose last attempt was cancelled after a
    failed one has no verdict (its final attempt decides) and must not be taken for a red run."""
    h = schema.ci_runs.alias("history")
    where = [
        _completed(h),
        h.c.finished_at >= history_start,
        h.c.finished_at < start,
        *_filters(h, **filters),
    ]
    key = (h.c.provider, h.c.repo, sa.func.coalesce(h.c.workflow, ""), sa.func.coalesce(h.c.branch, ""))
    last_green = (
        sa.select(*(c.label(f"k{i}") for i, c in enumerate(key)), sa.func.max(h.c.finished_at).label("green_at"))
        .where(*where, h.c.status == "success")
        .group_by(*key)
        .cte("last_green")
    )
    joined = sa.and_(*(c == last_green.c[f"k{i}"] for i, c in enumerate(key)))
    return (
        sa.select(*(h.c[c] for c in HISTORY_COLUMNS))
        .select_from(h.outerjoin(last_green, joined))
        .where(*where, sa.or_(last_green.c.green_at.is_(None), h.c.finished_at >= last_green.c.green_at))
    )


def _final_actor_in(runs: list[dict[str, Any]], actors: set[str]) -> list[dict[str, Any]]:
    """The attempts of the runs whose final attempt (the highest loaded) was started by one of ``actors``."""
    final: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in runs:
        seen = final.get(_key(row))
        if seen is None or row["attempt"] > seen["attempt"]:
            final[_key(row)] = row
    keep = {key for key, row in final.items() if row.get("actor") in actors}
    return [row for row in runs if _key(row) in keep]


def _load_deployments(
    conn: sa.Connection,
    *,
    since: dt.datetime,
    until: dt.datetime | None,
    provider: str | None,
    repos: list[str] | None,
) -> list[dict[str, Any]]:
    d = schema.ci_deployments
    q = sa.select(*(d.c[c] for c in DEPLOYMENT_COLUMNS)).where(
        d.c.finished_at.is_not(None), d.c.finished_at >= since, d.c.status.in_(("success", "failure"))
    )
    if until is not None:
        q = q.where(d.c.finished_at < until)
    if provider is not None:
        q = q.where(d.c.provider == provider)
    if repos is not None:
        q = q.where(d.c.repo.in_(repos))
    return _dicts(conn.execute(q))


# -- window summary --------------------------------------------------------------------------------
def _collector_paused(function: F) -> F:
    """Run ``function`` with Python's cyclic garbage collector paused (as it was before, afterwards).

    A summary reads and indexes hundreds of thousands of rows and jobs: every few hundred new objects
    the collector would walk all of them again (a third of the time over a million runs), and none of
    them is in a reference cycle that only it could free."""

    @functools.wraps(function)
    def paused(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return cast(F, paused)


def _group_fields(group_by: str | Sequence[str] | None) -> tuple[str, ...]:
    if group_by is None:
        return ()
    names = [group_by] if isinstance(group_by, str) else list(group_by)
    fields: list[str] = []
    for name in names:
        if name not in GROUPS:
            raise ValueError(f"group_by {name!r}: use one or more of {', '.join(GROUPS)}")
        fields += [f for f in GROUPS[name] if f not in fields]
    return tuple(f for f in GROUP_FIELDS if f in fields)


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if v is None else (1, str(v)) for v in key)


@_collector_paused
def window_summary(
    store: ResultsStore,
    *,
    start: dt.datetime,
    end: dt.datetime,
    repos: str | Iterable[str] | None = None,
    branches: str | Iterable[str] | None = None,
    workflows: str | Iterable[str] | None = None,
    actors: str | Iterable[str] | None = None,
    provider: str | None = None,
    group_by: str | Sequence[str] | None = None,
    with_previous: bool = True,
    history: dt.timedelta = DEFAULT_HISTORY,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Mapping[str, Any]] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
) -> dict[str, Any]:
    """The figures of ``[start, end)`` and of the previous window of the same length beside them.

    What the weekly report and the dashboard call. Returns a JSON-serialisable dict::

        {"window": {"start", "end"}, "previous_window": {"start", "end"} | None,
         "filters": {...}, "group_by": [fields],
         "total": {"current": Figures dict, "previous": Figures dict | None},
         "groups": [{"key": {field: value}, "current": ..., "previous": ...}, ...]}

    ``group_by``: ``None`` (``groups`` empty), ``"repo"`` (provider + repo), ``"workflow"``,
    ``"branch"``, ``"provider"``, or several (``("repo", "workflow", "branch")``); groups in key order,
    those without runs, open streaks or deployments in either window left out. DORA (``dora``) is
    computed for the total and for groups by provider/repo (deployments have no workflow or branch:
    ``None`` in other groups); ``commit_times`` and ``incidents`` are passed to :func:`.figures.dora`.
    ``history``: how far before the previous window red streaks and deployments are looked up.
    """
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ValueError(f"empty window: start {start} is not before end {end}")
    fields = _group_fields(group_by)
    previous_start = start - (end - start) if with_previous else start
    history_start = previous_start - history
    rows = load_rows(
        store,
        start=previous_start,
        end=end,
        history_start=history_start,
        repos=repos,
        branches=branches,
        workflows=workflows,
        actors=actors,
        provider=provider,
    )
    windows = [(start, end), (previous_start, start)] if with_previous else [(start, end)]
    total, groups = compute_windows(
        rows.index(),
        windows=windows,
        group_by=fields,
        categories=rows.categories,
        history_start=history_start,
        history_end=previous_start,
        deployments=rows.deployments,
        commit_times=commit_times,
        incidents=incidents,
        environments=environments,
    )

    def pair(figures: list[Figures]) -> dict[str, Any]:
        return {
            "current": figures[0].to_dict(),
            "previous": figures[1].to_dict() if with_previous else None,
        }

    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "previous_window": {"start": previous_start.isoformat(), "end": start.isoformat()} if with_previous else None,
        "filters": {
            "provider": provider,
            "repos": _as_list(repos),
            "branches": _as_list(branches),
            "workflows": _as_list(workflows),
            "actors": _as_list(actors),
        },
        "group_by": list(fields),
        "total": pair(total),
        "groups": [
            {"key": dict(zip(fields, key, strict=True)), **pair(groups[key])}
            for key in sorted(groups, key=_sort_key)
            if not all(f.is_empty() for f in groups[key])
        ],
    }


# -- ci_daily ----------------------------------------------------------------------------------------
def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


@_collector_paused
def daily_rows(
    store: ResultsStore,
    day: dt.date,
    *,
    computed_at: dt.datetime,
    provider: str | None = None,
    repos: str | Iterable[str] | None = None,
    history: dt.timedelta = DEFAULT_HISTORY,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Mapping[str, Any]] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
) -> list[dict[str, Any]]:
    """The ``ci_daily`` rows of one UTC day, sorted by key.

    One row per (provider, repo, workflow, branch) with runs that day (a missing workflow or branch is
    ``""``), and one per repository with ``workflow`` = ``branch`` = :data:`ALL`: the figures of all its
    runs that day, all its open streaks, and DORA judged with what was known at the day's end (so a
    re-run or a backfill of the day gives the same row); that row is written when the repository had
    runs or deployment activity that day.
    """
    start, end = _day_bounds(day)
    computed_at = _aware(computed_at, "computed_at")
    history_start = start - history
    rows = load_rows(
        store, start=start, end=end, history_start=history_start, repos=repos, provider=provider, deployments_until=end
    )
    index = rows.index()
    common: dict[str, Any] = {
        "windows": [(start, end)],
        "categories": rows.categories,
        "history_start": history_start,
    }
    out: list[dict[str, Any]] = []
    _, per_branch = compute_windows(index, group_by=GROUP_FIELDS, **common)
    for (prov, repo, workflow, branch), (figures,) in per_branch.items():
        if figures.runs:
            out.append(_daily_row(day, prov, repo, workflow or "", branch or "", figures, computed_at))
    _, per_repo = compute_windows(
        index,
        group_by=("provider", "repo"),
        deployments=rows.deployments,
        commit_times=commit_times,
        incidents=incidents,
        environments=environments,
        dora_as_of=end,
        **common,
    )
    for (prov, repo), (figures,) in per_repo.items():
        if figures.runs or dora_active(figures.dora):
            out.append(_daily_row(day, prov, repo, ALL, ALL, figures, computed_at))
    out.sort(key=lambda r: (r["provider"], r["repo"], r["workflow"], r["branch"]))
    return out


def _daily_row(
    day: dt.date, provider: str, repo: str, workflow: str, branch: str, figures: Figures, computed_at: dt.datetime
) -> dict[str, Any]:
    return {
        "day": day,
        "provider": provider,
        "repo": repo,
        "workflow": workflow,
        "branch": branch,
        "runs": figures.runs,
        "figures": figures.to_dict(),
        "computed_at": computed_at,
    }


def store_daily(
    store: ResultsStore,
    days: Iterable[dt.date],
    computed_at: dt.datetime,
    *,
    provider: str | None = None,
    repos: str | Iterable[str] | None = None,
    history: dt.timedelta = DEFAULT_HISTORY,
    commit_times: Mapping[Any, Sequence[dt.datetime]] | None = None,
    incidents: Iterable[Mapping[str, Any]] | None = None,
    environments: str | Collection[str] | None = DEFAULT_ENVIRONMENTS,
) -> int:
    """Recompute ``ci_daily`` for each day (:func:`daily_rows`) and write it: rows upserted on (day,
    provider, repo, workflow, branch), and rows of that day (within ``provider``/``repos``) that no
    longer have runs deleted, so recomputing a day leaves exactly the rows a first computation would
    write. One transaction per day. Returns the number of rows written."""
    repo_list = _as_list(repos)
    incident_rows = list(incidents) if incidents is not None else None
    computed_at = _aware(computed_at, "computed_at")
    t = schema.ci_daily
    written = 0
    for day in sorted(set(days)):
        rows = daily_rows(
            store,
            day,
            computed_at=computed_at,
            provider=provider,
            repos=repo_list,
            history=history,
            commit_times=commit_times,
            incidents=incident_rows,
            environments=environments,
        )
        keep = {(r["provider"], r["repo"], r["workflow"], r["branch"]) for r in rows}
        existing = sa.select(t.c.id, t.c.provider, t.c.repo, t.c.workflow, t.c.branch).where(t.c.day == day)
        if provider is not None:
            existing = existing.where(t.c.provider == provider)
        if repo_list is not None:
            existing = existing.where(t.c.repo.in_(repo_list))
        with store.begin() as conn:
            stale = [row_id for row_id, *key in conn.execute(existing) if tuple(key) not in keep]
            for ids in _batches(stale):
                conn.execute(sa.delete(t).where(t.c.id.in_(ids)))
            written += store.upsert(t, rows, keys=list(DAILY_KEYS), conn=conn)
    return written
