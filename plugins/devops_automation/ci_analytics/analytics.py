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
the job, category and history queries run on connections of their own while the runs are read, rows
come from the driver without SQLAlchemy's per-value processing (times made UTC here), and the
transaction gets :data:`PG_WORK_MEM`; Python's cyclic garbage collector is paused while a summary or
a day's rows are computed. None of it changes a figure: the tests compare PostgreSQL with SQLite and
with the figures of every row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from devops_automation.ci_analytics.figures import (
    DEFAULT_ENVIRONMENTS,
    FAILED,
    GROUP_FIELDS,
    JOB_FIELDS,
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


def _fetch_dicts(conn: sa.Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """The rows of ``query`` as dicts, times as aware UTC datetimes (what :class:`.schema.UTCDateTime`
    gives)."""
    keys = tuple(c.key for c in query.selected_columns)
    rows = [dict(zip(keys, row, strict=True)) for row in _rows(conn, query)]
    if conn.dialect.name == "postgresql":
        times = [c.key for c in query.selected_columns if isinstance(c.type, schema.UTCDateTime)]
        for row in rows:
            for key in times:
                value = row[key]
                if value is not None and value.tzinfo is not dt.UTC:
                    row[key] = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return rows


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (row["provider"], row["repo"], row["run_id"])


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
    r, j = schema.ci_runs, schema.ci_jobs
    in_range = [_completed(r), r.c.finished_at >= start, r.c.finished_at < end, *_filters(r, **filters)]
    job_columns = (r.c.id.label("run_row"), *(_job_column(j, c) for c in JOB_COLUMNS))
    jobs_of_attempts = sa.select(*job_columns).select_from(r.join(j, _same_attempt(r, j)))
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(store.engine.connect())
        _tune(conn)
        # PostgreSQL: the queries that need nothing from the others run meanwhile on connections of their
        # own (the server works on them while the runs are read here)
        later = _Later(store, conn, stack)
        jobs_in_range = later.rows(jobs_of_attempts.where(*in_range), join_by_index=True)
        look_back = history_start is not None and history_start < start
        history_rows = later.dicts(_history_query(history_start, start, filters)) if look_back else None
        runs = _fetch_dicts(conn, sa.select(*(r.c[c] for c in RUN_COLUMNS)).where(*in_range))
        superseded = _superseded(conn, end, filters)
        if superseded:
            gone = {run_id for _, _, run_id in superseded}  # a text test first: no key tuple for most rows
            runs = [row for row in runs if row["run_id"] not in gone or _key(row) not in superseded]
        earlier = _earlier_attempts(conn, runs)
        runs += earlier
        jobs: list[Sequence[Any]] = list(jobs_in_range())
        for ids in _batches([row["id"] for row in earlier]):
            jobs += _rows(conn, jobs_of_attempts.where(r.c.id.in_(ids)))
        categories = _load_categories(conn, runs, jobs)
        if history_rows is not None:
            history = history_rows()
            ids = {row["run_id"] for row in history}
            window_keys = {_key(row) for row in runs if row["run_id"] in ids}
            runs += [row for row in history if _key(row) not in window_keys and _key(row) not in superseded]
        deployments = _load_deployments(
            conn, since=history_start or start, until=deployments_until, provider=provider, repos=filters["repos"]
        )
    actor_list = _as_list(actors)
    if actor_list is not None:
        runs = _final_actor_in(runs, set(actor_list))
    return Rows(start, end, history_start, runs, jobs, deployments, categories)


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


def _earlier_attempts(conn: sa.Connection, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The completed attempts, not among ``runs``, of runs whose attempts there are not 1, 2, ... n.

    Only a run with an attempt other than 1 can miss one: the others are not looked at (most runs)."""
    candidates = {row["run_id"] for row in runs if row["attempt"] != 1}
    numbers: dict[tuple[str, str, str], set[int]] = {}
    for row in runs:
        if row["run_id"] in candidates:
            numbers.setdefault(_key(row), set()).add(row["attempt"])
    wanted = [key for key, seen in numbers.items() if max(seen) > len(seen)]
    r = schema.ci_runs
    found: list[dict[str, Any]] = []
    for keys in _batches(wanted):
        q = sa.select(*(r.c[c] for c in RUN_COLUMNS)).where(
            _completed(r), sa.tuple_(r.c.provider, r.c.repo, r.c.run_id).in_(list(keys))
        )
        found += [row for row in _fetch_dicts(conn, q) if row["attempt"] not in numbers[_key(row)]]
    return found


def _load_categories(
    conn: sa.Connection, runs: list[dict[str, Any]], jobs: list[Sequence[Any]]
) -> dict[tuple[str, str], str]:
    """``("gitlab", job_id)`` -> the category ``ci_failure_triage`` gave each failed GitLab job of ``jobs``
    (its latest analysis; an analysis filed under another project than the job's is not taken).

    Looked up by job id, once the jobs are read: a few failed jobs, not a join over every job."""
    repo_of = {row["id"]: row["repo"] for row in runs if row["provider"] == "gitlab" and row.get("id") is not None}
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
    ``rows(query)`` and ``dicts(query)`` return a function that gives the result."""

    def __init__(self, store: ResultsStore, conn: sa.Connection, stack: contextlib.ExitStack) -> None:
        self.store = store
        self.conn = conn
        self.pool = stack.enter_context(ThreadPoolExecutor(2)) if conn.dialect.name == "postgresql" else None

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

    def dicts(self, query: sa.Select[Any]) -> Any:
        return self._start(_fetch_dicts, query)


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
