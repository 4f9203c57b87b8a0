"""Read functions of the DevOps view over the results store (SQLAlchemy Core, no Airflow).

Every function takes a :class:`~devops_automation.store.ResultsStore` and keyword filters, and returns
plain dicts and lists (times as aware UTC datetimes, JSON columns as Python values), so the API, the
pages and the benchmark share them. Bad filter values raise :class:`InvalidFilter` naming the field.

**Pagination.** Lists that can grow without bound return a :class:`Page`: at most ``limit`` items
(:data:`MAX_LIMIT` at most) and ``next_cursor``, an opaque keyset cursor (the sort key of the last item)
to pass back as ``cursor`` for the next page; ``None`` on the last page. Keyset, not offset: a page deep
in a million runs costs what the first one costs.

**Which index each list reads** (PostgreSQL plans checked with 1,000,000 runs, 50,000 analyses):

* analysed jobs and pipelines: newest first by primary key (``failure_analyses.id`` /
  ``failure_events.id``); ``since``/``until`` on ``failure_analyses.created_at`` through
  ``ix_failure_analyses_created_at`` (migration 0005); ``fingerprint`` through
  ``ix_failure_analyses_fingerprint``;
* runs of a repository: ``ix_ci_runs_repo_finished`` (provider, repo, finished_at), newest finish
  first; the cursor's finish time bounds the index range;
* one run: ``uq_ci_runs_provider_repo_run_id_attempt`` and ``ix_ci_jobs_run``;
* red branches and the repository list: ``ci_daily`` (the per-day figures ``ci_pipeline_analytics``
  stores, computed by the same :mod:`devops_automation.ci_analytics` code), one small row per
  repository and day, not ``ci_runs``;
* CI figures of a window and flaky jobs: :func:`devops_automation.ci_analytics.analytics.window_summary`,
  the function the weekly report and ``daily_project_metrics`` use (it reads ``ci_runs``/``ci_jobs``
  by their indexes; seconds over a million runs: the API caches its answers for a minute);
* metrics and health history of a project: ``ix_project_metrics_project_day`` and
  ``ix_health_scores_project_day`` (migration 0005);
* alerts, notifications, reports: small tables; notifications by their unique ``dedup_key``;
* ``ci_run_action``'s audit trail: newest request first through ``ix_ci_run_actions_requested_at``.

**Which DAG each data set belongs to** (:data:`DATASET_DAGS`): the API lets a user read a data set only
when Airflow's auth manager lets them read that DAG. Alerts belong to the DAG that raised them
(``alert_events.source``), reports to ``weekly_report`` / ``monthly_report`` by their kind.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from devops_automation.ci_analytics import analytics
from devops_automation.store import ResultsStore, schema
from devops_automation.store.alert_events import AlertEvent, dedup_key

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
TRIAGE_DAG = "ci_failure_triage"
ANALYTICS_DAG = "ci_pipeline_analytics"
METRICS_DAG = "daily_project_metrics"
WEEKLY_DAG = "weekly_report"
MONTHLY_DAG = "monthly_report"
ACTION_DAG = "ci_run_action"
#: The DAG(s) whose data each data set is; a user needs read access to one of them (alerts and reports:
#: to the DAG of each row, see :func:`alert_dag` and :func:`report_dag`).
DATASET_DAGS: Mapping[str, tuple[str, ...]] = {
    "failures": (TRIAGE_DAG,),
    "ci": (ANALYTICS_DAG,),
    "metrics": (METRICS_DAG,),
    "alerts": (ANALYTICS_DAG, METRICS_DAG),
    "reports": (WEEKLY_DAG, MONTHLY_DAG),
    "actions": (ACTION_DAG,),
}
#: ``notifications.dedup_key`` prefix of each alerting DAG's messages (``alert_events.dedup_key``): the
#: same strings as ``DEDUP_PREFIX`` of ci_pipeline_analytics/alert_store.py and daily_project_metrics/alerts.py
#: (a shared part never imports a workflow; a test checks that they agree).
ALERT_DEDUP_PREFIXES: Mapping[str, str] = {ANALYTICS_DAG: "ci-alert", METRICS_DAG: "metrics-alert"}
ALERT_CHANNELS = ("slack", "telegram", "email")
#: Longest CI window the API computes at once (window_summary reads every run of the window and the one before).
MAX_CI_WINDOW = dt.timedelta(days=92)
PROVIDERS = ("github", "gitlab")
ALERT_STATES = ("firing", "resolved")
SEVERITIES = ("critical", "warning")
#: The failure categories of the failure-log engine (``ci_logs.signals.CATEGORIES``, which imports the LLM
#: client: not imported here; a test checks that they agree), in its order.
FAILURE_CATEGORIES = (
    "compile_error",
    "test_failure",
    "dependency",
    "infrastructure",
    "timeout",
    "configuration",
    "lint",
    "permission",
    "unknown",
)
#: ``ci_run_actions.action`` and ``.outcome`` values (``workflows/ci_run_action/plan.py`` ``ACTIONS`` /
#: ``OUTCOMES``: not imported here, a shared part never imports a workflow; a test checks that they agree).
RUN_ACTIONS = ("rerun", "rerun_failed", "cancel", "redeploy")
RUN_ACTION_OUTCOMES = (
    "success",
    "failure",
    "timed_out",
    "cancelled",
    "skipped",
    "other",
    "refused",
    "dry_run",
    "error",
)
#: The figures of a ``ci_daily`` row the view draws over time (:func:`ci_daily_series`).
DAILY_FIGURES = ("success_rate", "first_attempt_success_rate", "duration_p90_s", "queue_run_p90_s", "mttr_s")
#: The archive's file names (weekly_report/archive.py): one path segment, no ``..``.
ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class InvalidFilter(ValueError):
    """A filter value this API cannot use; ``field`` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass
class Page:
    """One page of a list: the items and the cursor of the next page (``None``: this is the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    limit: int = DEFAULT_LIMIT


# -- helpers -----------------------------------------------------------------------------------------
def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidFilter("limit", f"must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return min(limit, MAX_LIMIT)


def utc(value: dt.datetime | dt.date | None, field: str) -> dt.datetime | None:
    """An aware UTC datetime; a naive one is taken as UTC, a date as its 00:00 UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise InvalidFilter(field, f"expected a date or time, got {value!r}")


def _range(since: Any, until: Any, since_field: str = "since", until_field: str = "until") -> tuple[Any, Any]:
    since_t, until_t = utc(since, since_field), utc(until, until_field)
    if since_t is not None and until_t is not None and until_t <= since_t:
        raise InvalidFilter(until_field, f"must be after {since_field} ({since_t.isoformat()})")
    return since_t, until_t


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque cursor for a sort key (ints, text, datetimes)."""
    plain = [{"t": v.isoformat()} if isinstance(v, dt.datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: Sequence[type], field: str = "cursor") -> list[Any] | None:
    """The sort key in ``cursor``, checked against ``shape`` (``int``, ``str``, ``dt.datetime``)."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidFilter(field, "not a cursor this API gave (pass next_cursor back unchanged)") from None
    if not isinstance(values, list) or len(values) != len(shape):
        raise InvalidFilter(field, "not a cursor of this list (pass next_cursor back unchanged)")
    out: list[Any] = []
    for value, kind in zip(values, shape, strict=True):
        if kind is dt.datetime:
            try:
                out.append(dt.datetime.fromisoformat(value["t"]).astimezone(dt.UTC))
            except (TypeError, KeyError, ValueError):
                raise InvalidFilter(field, "not a cursor of this list") from None
        elif (kind is int and isinstance(value, int) and not isinstance(value, bool)) or (
            kind is str and isinstance(value, str)
        ):
            out.append(value)
        else:
            raise InvalidFilter(field, "not a cursor of this list")
    return out


def _page(rows: list[dict[str, Any]], limit: int, key: Any) -> Page:
    """``rows`` fetched with ``limit + 1``: the page and the cursor after its last item."""
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])) if more and items else None, limit)


def _dicts(conn: sa.Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def _text_list(values: Iterable[str] | str | None) -> list[str] | None:
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    items = [v.strip() for v in items if v and v.strip()]
    return items or None


# -- failures (ci_failure_triage) ----------------------------------------------------------------------
_JOB_COLUMNS = (
    "id",
    "event_id",
    "job_id",
    "job_name",
    "stage",
    "job_url",
    "category",
    "root_cause",
    "is_transient",
    "confidence",
    "analyser",
    "fingerprint",
    "retried_job_id",
    "created_at",
)
_EVENT_COLUMNS = (
    "provider",
    "project_id",
    "project_path",
    "pipeline_id",
    "ref",
    "sha",
    "pipeline_url",
)


def _payload_fields(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the view shows of a failure event's payload: the Airflow run that analysed it and when the
    pipeline ran (``claimed_by`` / ``pipeline_at`` of ci_failure_triage's store)."""
    payload = payload or {}
    return {
        "dag_run_id": payload.get("claimed_by"),
        "pipeline_at": payload.get("pipeline_at"),
        "sources": list(payload.get("sources") or []),
    }


def _project_match(fe: Any, project: str) -> Any:
    return sa.or_(fe.c.project_path == project, fe.c.project_id == project)


def failure_jobs(
    store: ResultsStore,
    *,
    project: str | None = None,
    category: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    fingerprint: str | None = None,
    event_id: int | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Analysed failed jobs, newest analysis first, with their pipeline's project and ref.

    ``project``: GitLab path or numeric id; ``since``/``until``: the analysis time (``created_at``, the
    triage run's time)."""
    limit = check_limit(limit)
    since_t, until_t = _range(since, until)
    after = decode_cursor(cursor, (int,))
    fa, fe = schema.failure_analyses, schema.failure_events
    q = sa.select(*(fa.c[c] for c in _JOB_COLUMNS), *(fe.c[c] for c in _EVENT_COLUMNS)).select_from(
        fa.join(fe, fe.c.id == fa.c.event_id)
    )
    if project:
        q = q.where(_project_match(fe, project))
    if category:
        q = q.where(fa.c.category == category)
    if fingerprint:
        q = q.where(fa.c.fingerprint == fingerprint)
    if event_id is not None:
        q = q.where(fa.c.event_id == event_id)
    if since_t is not None:
        q = q.where(fa.c.created_at >= since_t)
    if until_t is not None:
        q = q.where(fa.c.created_at < until_t)
    if after is not None:
        q = q.where(fa.c.id < after[0])
    with store.engine.connect() as conn:
        rows = _dicts(conn, q.order_by(fa.c.id.desc()).limit(limit + 1))
    return _page(rows, limit, lambda r: [r["id"]])


def failure_analysis(store: ResultsStore, analysis_id: int) -> dict[str, Any] | None:
    """One analysis in full: root cause, fix steps, evidence lines, the (redacted) excerpt as text and as
    lines (``excerpt_text_lines``) with the log line ranges it was cut from (``excerpt_lines``), the
    analyser's model and cost, and its pipeline (with the Airflow run that analysed it)."""
    fa, fe = schema.failure_analyses, schema.failure_events
    q = (
        sa.select(fa, *(fe.c[c] for c in (*_EVENT_COLUMNS, "status", "state", "received_at", "payload")))
        .select_from(fa.join(fe, fe.c.id == fa.c.event_id))
        .where(fa.c.id == analysis_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out.update(_payload_fields(out.pop("payload")))
    excerpt = out.get("excerpt")
    out["excerpt_text_lines"] = excerpt.splitlines() if excerpt else []
    out["excerpt_lines"] = list(out.get("excerpt_lines") or [])
    out["fix_steps"] = list(out.get("fix_steps") or [])
    out["evidence_lines"] = list(out.get("evidence_lines") or [])
    return out


def failure_pipelines(
    store: ResultsStore,
    *,
    project: str | None = None,
    category: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    fingerprint: str | None = None,
    state: str | None = None,
    dag_run_id: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Failed pipelines, newest first, each with how many jobs were analysed and their categories.

    ``since``/``until``: when the failure was received; ``category``/``fingerprint``: pipelines with at
    least one analysis of it; ``dag_run_id``: the pipelines that Airflow run analysed (for the DAG-run view).
    """
    limit = check_limit(limit)
    since_t, until_t = _range(since, until)
    after = decode_cursor(cursor, (int,))
    fa, fe = schema.failure_analyses, schema.failure_events
    q = sa.select(
        fe.c.id,
        *(fe.c[c] for c in _EVENT_COLUMNS),
        fe.c.status,
        fe.c.state,
        fe.c.source,
        fe.c.received_at,
        fe.c.updated_at,
        fe.c.payload,
    )
    if project:
        q = q.where(_project_match(fe, project))
    if state:
        q = q.where(fe.c.state == state)
    if since_t is not None:
        q = q.where(fe.c.received_at >= since_t)
    if until_t is not None:
        q = q.where(fe.c.received_at < until_t)
    if dag_run_id:
        q = q.where(fe.c.payload["claimed_by"].as_string() == dag_run_id)
    for column, value in (("category", category), ("fingerprint", fingerprint)):
        if value:
            q = q.where(sa.exists().where(fa.c.event_id == fe.c.id, fa.c[column] == value))
    if after is not None:
        q = q.where(fe.c.id < after[0])
    with store.engine.connect() as conn:
        rows = _dicts(conn, q.order_by(fe.c.id.desc()).limit(limit + 1))
        page = _page(rows, limit, lambda r: [r["id"]])
        jobs = _jobs_of(conn, [r["id"] for r in page.items])
    for row in page.items:
        row.update(_payload_fields(row.pop("payload")))
        mine = jobs.get(row["id"], [])
        row["analysed_jobs"] = len(mine)
        row["categories"] = sorted({j["category"] for j in mine})
    return page


def _jobs_of(conn: sa.Connection, event_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not event_ids:
        return {}
    fa = schema.failure_analyses
    q = sa.select(*(fa.c[c] for c in _JOB_COLUMNS)).where(fa.c.event_id.in_(event_ids)).order_by(fa.c.id)
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in _dicts(conn, q):
        out[row["event_id"]].append(row)
    return out


def failure_pipeline(store: ResultsStore, event_id: int) -> dict[str, Any] | None:
    """One failed pipeline with every analysis of its jobs (summary fields; the full analysis is
    :func:`failure_analysis`)."""
    fe = schema.failure_events
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(fe).where(fe.c.id == event_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["jobs"] = _jobs_of(conn, [event_id]).get(event_id, [])
    out.update(_payload_fields(out.pop("payload")))
    out["analysed_jobs"] = len(out["jobs"])
    out["categories"] = sorted({j["category"] for j in out["jobs"]})
    return out


def pipeline_jobs(store: ResultsStore, event_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The analysed jobs (summary fields) of each failed pipeline in ``event_ids``, oldest analysis first."""
    with store.engine.connect() as conn:
        return dict(_jobs_of(conn, list(event_ids)))


def _utc_day(column: Any, dialect: str) -> Any:
    """The UTC calendar day of a timestamp column, in SQL (SQLite keeps naive UTC text)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def failures_by_day(
    store: ResultsStore, *, since: dt.datetime | dt.date, until: dt.datetime | dt.date
) -> list[dict[str, Any]]:
    """Analysed failed jobs per UTC day and category in ``[since, until)`` (by ``created_at``):
    ``[{"day", "category", "failures"}]``, by day then category (``ix_failure_analyses_created_at``)."""
    since_t, until_t = _range(since, until)
    fa = schema.failure_analyses
    day = _utc_day(fa.c.created_at, store.engine.dialect.name).label("day")
    q = (
        sa.select(day, fa.c.category, sa.func.count().label("failures"))
        .where(fa.c.created_at >= since_t, fa.c.created_at < until_t)
        .group_by(day, fa.c.category)
        .order_by(day, fa.c.category)
    )
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    for row in rows:
        if isinstance(row["day"], str):
            row["day"] = dt.date.fromisoformat(row["day"])
        row["failures"] = int(row["failures"])
    return rows


def recurring_fingerprints(
    store: ResultsStore,
    *,
    project: str | None = None,
    since: dt.datetime | dt.date | None = None,
    min_occurrences: int = 2,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Failures seen again and again (``failure_fingerprints``): the same first error of the same job in
    the same project, most recently seen first. ``since``: seen at or after it."""
    limit = check_limit(limit)
    if isinstance(min_occurrences, bool) or not isinstance(min_occurrences, int) or min_occurrences < 1:
        raise InvalidFilter("min_occurrences", f"must be a whole number of at least 1, got {min_occurrences!r}")
    since_t = utc(since, "since")
    after = decode_cursor(cursor, (dt.datetime, str))
    t = schema.failure_fingerprints
    q = sa.select(
        t.c.fingerprint,
        t.c.project_path,
        t.c.job_name,
        t.c.first_error,
        t.c.occurrences,
        t.c.first_seen,
        t.c.last_seen,
    ).where(t.c.occurrences >= min_occurrences)
    if project:
        q = q.where(t.c.project_path == project)
    if since_t is not None:
        q = q.where(t.c.last_seen >= since_t)
    if after is not None:
        q = q.where(t.c.last_seen <= after[0], sa.or_(t.c.last_seen < after[0], t.c.fingerprint < after[1]))
    q = q.order_by(t.c.last_seen.desc(), t.c.fingerprint.desc()).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    return _page(rows, limit, lambda r: [r["last_seen"], r["fingerprint"]])


# -- CI analytics (ci_pipeline_analytics) ----------------------------------------------------------------
def _ci_window(start: Any, end: Any) -> tuple[dt.datetime, dt.datetime]:
    start_t, end_t = utc(start, "start"), utc(end, "end")
    if start_t is None or end_t is None:
        raise InvalidFilter("start" if start_t is None else "end", "is required")
    if end_t <= start_t:
        raise InvalidFilter("end", f"must be after start ({start_t.isoformat()})")
    if end_t - start_t > MAX_CI_WINDOW:
        raise InvalidFilter("start", f"the window may be at most {MAX_CI_WINDOW.days} days long")
    return start_t, end_t


def _check_provider(provider: str | None) -> str | None:
    if provider is not None and provider not in PROVIDERS:
        raise InvalidFilter("provider", f"must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    return provider


def ci_summary(
    store: ResultsStore,
    *,
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date,
    provider: str | None = None,
    repos: Iterable[str] | str | None = None,
    branches: Iterable[str] | str | None = None,
    workflows: Iterable[str] | str | None = None,
    actors: Iterable[str] | str | None = None,
    group_by: Sequence[str] | str | None = None,
    with_previous: bool = True,
) -> dict[str, Any]:
    """The CI figures of ``[start, end)`` (and of the window before it), by
    :func:`~devops_automation.ci_analytics.analytics.window_summary`: what the weekly report shows."""
    start_t, end_t = _ci_window(start, end)
    groups = _text_list(group_by)
    if groups:
        bad = [g for g in groups if g not in analytics.GROUPS]
        if bad:
            raise InvalidFilter("group_by", f"{bad[0]!r}: use one or more of {', '.join(analytics.GROUPS)}")
    return analytics.window_summary(
        store,
        start=start_t,
        end=end_t,
        provider=_check_provider(provider),
        repos=_text_list(repos),
        branches=_text_list(branches),
        workflows=_text_list(workflows),
        actors=_text_list(actors),
        group_by=groups,
        with_previous=with_previous,
    )


def ci_flaky_jobs(
    store: ResultsStore,
    *,
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date,
    provider: str | None = None,
    repos: Iterable[str] | str | None = None,
    branches: Iterable[str] | str | None = None,
    workflows: Iterable[str] | str | None = None,
) -> dict[str, Any]:
    """Flaky jobs of the window (a job that failed and passed on the same commit), most flaky first, and the
    flaky rate: the ``flaky_jobs`` / ``flaky_rate`` figures of :func:`ci_summary` (without the previous window)."""
    summary = ci_summary(
        store,
        start=start,
        end=end,
        provider=provider,
        repos=repos,
        branches=branches,
        workflows=workflows,
        with_previous=False,
    )
    current = summary["total"]["current"]
    return {
        "window": summary["window"],
        "filters": summary["filters"],
        "flaky_rate": current["flaky_rate"],
        "jobs": current["flaky_jobs"],
    }


def ci_red_branches(
    store: ResultsStore,
    *,
    provider: str | None = None,
    repos: Iterable[str] | str | None = None,
    branches: Iterable[str] | str | None = None,
    workflows: Iterable[str] | str | None = None,
    until: dt.date | None = None,
    days: int = analytics.DEFAULT_HISTORY.days,
) -> dict[str, Any]:
    """Branches red right now: the open red streaks (a workflow's last verdict on a branch was a failure)
    of each repository as of the end of its latest computed day (``ci_daily``'s repository-wide row, which
    ``ci_pipeline_analytics`` recomputes whenever that day's runs are collected), oldest streak first.

    Only repositories with runs in the ``days`` days up to ``until`` (default: the latest computed day)
    are looked at, as window_summary looks back :data:`~devops_automation.ci_analytics.analytics.DEFAULT_HISTORY`.
    """
    _check_provider(provider)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise InvalidFilter("days", f"must be a whole number from 1 to 366, got {days!r}")
    repo_list, branch_list, workflow_list = _text_list(repos), _text_list(branches), _text_list(workflows)
    d = schema.ci_daily
    repo_rows = sa.and_(d.c.workflow == analytics.ALL, d.c.branch == analytics.ALL)
    with store.engine.connect() as conn:
        last = until or conn.execute(sa.select(sa.func.max(d.c.day)).where(repo_rows)).scalar()
        if last is None:
            return {"as_of": None, "branches": []}
        latest = sa.select(d.c.provider, d.c.repo, sa.func.max(d.c.day).label("day")).where(
            repo_rows, d.c.day <= last, d.c.day > last - dt.timedelta(days=days)
        )
        if provider:
            latest = latest.where(d.c.provider == provider)
        if repo_list:
            latest = latest.where(d.c.repo.in_(repo_list))
        latest_cte = latest.group_by(d.c.provider, d.c.repo).cte("latest")
        q = (
            sa.select(d.c.provider, d.c.repo, d.c.day, d.c.figures["open_streaks"].label("open_streaks"))
            .select_from(
                d.join(
                    latest_cte,
                    sa.and_(
                        d.c.provider == latest_cte.c.provider,
                        d.c.repo == latest_cte.c.repo,
                        d.c.day == latest_cte.c.day,
                    ),
                )
            )
            .where(repo_rows)
        )
        rows = conn.execute(q).all()
    out = []
    for _provider, _repo, day, streaks in rows:
        as_of = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        for streak in streaks or []:
            if branch_list and streak.get("branch") not in branch_list:
                continue
            if workflow_list and streak.get("workflow") not in workflow_list:
                continue
            out.append({**streak, "as_of": as_of})
    out.sort(
        key=lambda s: (
            s.get("started_at") or "",
            s["provider"],
            s["repo"],
            str(s.get("workflow")),
            str(s.get("branch")),
        )
    )
    return {
        "as_of": dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + dt.timedelta(days=1),
        "branches": out,
    }


def ci_repos(store: ResultsStore, *, since: dt.date | None = None) -> list[dict[str, Any]]:
    """The repositories with CI figures (``ci_daily``), each with its latest computed day and the runs
    since ``since`` (default: all days)."""
    d = schema.ci_daily
    q = (
        sa.select(
            d.c.provider,
            d.c.repo,
            sa.func.max(d.c.day).label("last_day"),
            sa.func.min(d.c.day).label("first_day"),
            sa.func.sum(d.c.runs).label("runs"),
        )
        .where(d.c.workflow == analytics.ALL, d.c.branch == analytics.ALL)
        .group_by(d.c.provider, d.c.repo)
        .order_by(d.c.provider, d.c.repo)
    )
    if since is not None:
        q = q.where(d.c.day >= since)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    for row in rows:
        row["runs"] = int(row["runs"] or 0)
    return rows


def ci_daily_series(
    store: ResultsStore,
    *,
    since: dt.date,
    until: dt.date,
    provider: str | None = None,
    repos: Iterable[str] | str | None = None,
    level: str = "repo",
) -> list[dict[str, Any]]:
    """Per-day CI figures of ``ci_daily`` from ``since`` to ``until`` (both included), oldest first:
    ``{"day", "provider", "repo", "workflow", "branch", "runs", <DAILY_FIGURES>}``. ``level="repo"``: the
    repository-wide rows; ``"workflow"``: one row per workflow and branch."""
    since_d, until_d = _days(since, until)
    if since_d is None or until_d is None:
        raise InvalidFilter("since" if since_d is None else "until", "is required")
    if level not in ("repo", "workflow"):
        raise InvalidFilter("level", f"must be repo or workflow, got {level!r}")
    d = schema.ci_daily
    q = sa.select(
        d.c.day,
        d.c.provider,
        d.c.repo,
        d.c.workflow,
        d.c.branch,
        d.c.runs,
        *(d.c.figures[name].as_float().label(name) for name in DAILY_FIGURES),
    ).where(d.c.day >= since_d, d.c.day <= until_d)
    if level == "repo":
        q = q.where(d.c.workflow == analytics.ALL, d.c.branch == analytics.ALL)
    else:
        q = q.where(d.c.workflow != analytics.ALL)
    if _check_provider(provider):
        q = q.where(d.c.provider == provider)
    repo_list = _text_list(repos)
    if repo_list:
        q = q.where(d.c.repo.in_(repo_list))
    with store.engine.connect() as conn:
        return _dicts(conn, q.order_by(d.c.day, d.c.provider, d.c.repo, d.c.workflow, d.c.branch))


_RUN_COLUMNS = (
    "id",
    "provider",
    "repo",
    "run_id",
    "attempt",
    "run_number",
    "name",
    "workflow",
    "branch",
    "sha",
    "actor",
    "event",
    "status",
    "conclusion",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "queue_s",
    "url",
    "parent_run_id",
)


def ci_runs(
    store: ResultsStore,
    *,
    provider: str,
    repo: str,
    branch: str | None = None,
    workflow: str | None = None,
    status: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Every attempt of the repository's runs, the latest finish first (``finished_at``, then id).

    ``status="running"``: the attempts not finished yet (no finish time), newest first by id; any other
    ``status`` (ours: success, failure, timed_out, cancelled, skipped) filters finished attempts.
    ``since``/``until``: the finish time."""
    limit = check_limit(limit)
    if _check_provider(provider) is None:
        raise InvalidFilter("provider", "is required")
    if not repo:
        raise InvalidFilter("repo", "is required")
    since_t, until_t = _range(since, until)
    r = schema.ci_runs
    q = sa.select(*(r.c[c] for c in _RUN_COLUMNS)).where(r.c.provider == provider, r.c.repo == repo)
    if branch:
        q = q.where(r.c.branch == branch)
    if workflow:
        q = q.where(r.c.workflow == workflow)
    if status == "running":
        after = decode_cursor(cursor, (int,))
        q = q.where(r.c.finished_at.is_(None))
        if after is not None:
            q = q.where(r.c.id < after[0])
        q = q.order_by(r.c.id.desc())

        def key(row: dict[str, Any]) -> list[Any]:
            return [row["id"]]
    else:
        after = decode_cursor(cursor, (dt.datetime, int))
        q = q.where(r.c.finished_at.is_not(None))
        if status:
            q = q.where(r.c.status == status)
        if since_t is not None:
            q = q.where(r.c.finished_at >= since_t)
        if until_t is not None:
            q = q.where(r.c.finished_at < until_t)
        if after is not None:
            # the first condition bounds the index range, the second breaks ties on the finish time
            q = q.where(r.c.finished_at <= after[0], sa.or_(r.c.finished_at < after[0], r.c.id < after[1]))
        q = q.order_by(r.c.finished_at.desc(), r.c.id.desc())

        def key(row: dict[str, Any]) -> list[Any]:
            return [row["finished_at"], row["id"]]

    with store.engine.connect() as conn:
        rows = _dicts(conn, q.limit(limit + 1))
    return _page(rows, limit, key)


_CI_JOB_COLUMNS = (
    "attempt",
    "job_id",
    "name",
    "stage",
    "status",
    "conclusion",
    "started_at",
    "finished_at",
    "duration_s",
    "queue_s",
    "runner",
    "failure_reason",
    "url",
    "retried",
    "allow_failure",
)


def ci_run(store: ResultsStore, row_id: int) -> dict[str, Any] | None:
    """The run of one ``ci_runs`` row: every attempt (oldest first), each with its jobs."""
    r, j = schema.ci_runs, schema.ci_jobs
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(r.c.provider, r.c.repo, r.c.run_id).where(r.c.id == row_id)).first()
        if row is None:
            return None
        provider, repo, run_id = row
        attempts = _dicts(
            conn,
            sa.select(*(r.c[c] for c in _RUN_COLUMNS))
            .where(r.c.provider == provider, r.c.repo == repo, r.c.run_id == run_id)
            .order_by(r.c.attempt),
        )
        jobs = _dicts(
            conn,
            sa.select(*(j.c[c] for c in _CI_JOB_COLUMNS))
            .where(j.c.provider == provider, j.c.repo == repo, j.c.run_id == run_id)
            .order_by(j.c.attempt, j.c.started_at, j.c.id),
        )
    by_attempt: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        by_attempt[job.pop("attempt")].append(job)
    for attempt in attempts:
        attempt["jobs"] = by_attempt.get(attempt["attempt"], [])
    return {"provider": provider, "repo": repo, "run_id": run_id, "attempts": attempts}


# -- metrics and health (daily_project_metrics) ------------------------------------------------------------
def _day(value: dt.date | dt.datetime | None, field: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    raise InvalidFilter(field, f"expected a date, got {value!r}")


def _days(since: Any, until: Any) -> tuple[dt.date | None, dt.date | None]:
    since_d, until_d = _day(since, "since"), _day(until, "until")
    if since_d is not None and until_d is not None and until_d < since_d:
        raise InvalidFilter("until", f"must not be before since ({since_d.isoformat()})")
    return since_d, until_d


def health_latest(
    store: ResultsStore,
    *,
    day: dt.date | None = None,
    compare_days: int = 7,
    project: str | None = None,
    stale_days: int = 7,
    components: bool = True,
) -> dict[str, Any]:
    """Each project's health score on ``day`` (default: the latest scored day) beside its score
    ``compare_days`` earlier: ``change`` = score − previous. A project's score is its latest one within
    ``stale_days`` before the day (a day without a score takes the one before). Sorted by project.

    The inputs (``components``, a few KB of JSON a score) are read for the scores shown only (``None``
    with ``components=False``)."""
    for name, value, top in (("compare_days", compare_days, 366), ("stale_days", stale_days, 366)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidFilter(name, f"must be a whole number from 1 to {top}, got {value!r}")
    h = schema.health_scores
    with store.engine.connect() as conn:
        last = day or conn.execute(sa.select(sa.func.max(h.c.day))).scalar()
        if last is None:
            return {"day": None, "previous_day": None, "projects": []}
        before = last - dt.timedelta(days=compare_days)
        q = sa.select(h.c.id, h.c.day, h.c.project, h.c.score, h.c.grade).where(
            sa.or_(
                sa.and_(h.c.day <= last, h.c.day > last - dt.timedelta(days=stale_days)),
                sa.and_(h.c.day <= before, h.c.day > before - dt.timedelta(days=stale_days)),
            )
        )
        if project:
            q = q.where(h.c.project == project)
        rows = _dicts(conn, q.order_by(h.c.project, h.c.day))
        now: dict[str, dict[str, Any]] = {}
        then: dict[str, dict[str, Any]] = {}
        for row in rows:  # by day: the last one of each range wins
            (now if row["day"] > before else then)[row["project"]] = row
        inputs: dict[int, Any] = {}
        if components and now:
            wanted = sorted(r["id"] for r in now.values())
            for first in range(0, len(wanted), 1000):
                chunk = wanted[first : first + 1000]
                inputs.update(conn.execute(sa.select(h.c.id, h.c.components).where(h.c.id.in_(chunk))).all())
    for row in now.values():
        row["components"] = inputs.get(row["id"])
    projects = []
    for name in sorted(now):
        cur, prev = now[name], then.get(name)
        projects.append(
            {
                "project": name,
                "day": cur["day"],
                "score": cur["score"],
                "grade": cur["grade"],
                "components": cur["components"],
                "previous_day": prev["day"] if prev else None,
                "previous_score": prev["score"] if prev else None,
                "change": cur["score"] - prev["score"] if prev else None,
            }
        )
    return {"day": last, "previous_day": before, "projects": projects}


def health_history(
    store: ResultsStore,
    *,
    project: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int | None = 366,
) -> list[dict[str, Any]]:
    """A project's health scores (with their inputs, ``components``), oldest first; the latest ``limit``
    days when no ``since`` is given."""
    if not project:
        raise InvalidFilter("project", "is required")
    limit = check_limit(limit)
    since_d, until_d = _days(since, until)
    h = schema.health_scores
    q = sa.select(h.c.day, h.c.project, h.c.score, h.c.grade, h.c.components, h.c.created_at).where(
        h.c.project == project
    )
    if since_d is not None:
        q = q.where(h.c.day >= since_d)
    if until_d is not None:
        q = q.where(h.c.day <= until_d)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q.order_by(h.c.day.desc()).limit(limit))
    rows.reverse()
    return rows


def health_series(
    store: ResultsStore, *, projects: Iterable[str], since: dt.date | None = None, until: dt.date | None = None
) -> list[dict[str, Any]]:
    """The health scores (with their inputs) of several projects, by project then day
    (``ix_health_scores_project_day``)."""
    names = _text_list(projects)
    if not names:
        return []
    since_d, until_d = _days(since, until)
    h = schema.health_scores
    q = sa.select(h.c.project, h.c.day, h.c.score, h.c.grade, h.c.components).where(h.c.project.in_(names))
    if since_d is not None:
        q = q.where(h.c.day >= since_d)
    if until_d is not None:
        q = q.where(h.c.day <= until_d)
    with store.engine.connect() as conn:
        return _dicts(conn, q.order_by(h.c.project, h.c.day))


def project_metrics(
    store: ResultsStore,
    *,
    project: str,
    source: str | None = None,
    metrics: Iterable[str] | str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """A project's daily metrics (``project_metrics``), the latest day first (then source, metric)."""
    if not project:
        raise InvalidFilter("project", "is required")
    limit = check_limit(limit)
    since_d, until_d = _days(since, until)
    after = decode_cursor(cursor, (str, int))
    m = schema.project_metrics
    q = sa.select(
        m.c.id, m.c.day, m.c.source, m.c.project, m.c.metric, m.c.value, m.c.value_raw, m.c.unit, m.c.collected_at
    ).where(m.c.project == project)
    if source:
        q = q.where(m.c.source == source)
    metric_list = _text_list(metrics)
    if metric_list:
        q = q.where(m.c.metric.in_(metric_list))
    if since_d is not None:
        q = q.where(m.c.day >= since_d)
    if until_d is not None:
        q = q.where(m.c.day <= until_d)
    if after is not None:
        try:
            day = dt.date.fromisoformat(after[0])
        except ValueError:
            raise InvalidFilter("cursor", "not a cursor of this list") from None
        q = q.where(m.c.day <= day, sa.or_(m.c.day < day, m.c.id < after[1]))
    q = q.order_by(m.c.day.desc(), m.c.id.desc()).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    return _page(rows, limit, lambda r: [r["day"].isoformat(), r["id"]])


# -- alerts --------------------------------------------------------------------------------------------
_ALERT_COLUMNS = (
    "id",
    "source",
    "rule_id",
    "scope_key",
    "severity",
    "state",
    "started_at",
    "resolved_at",
    "last_evaluated_at",
    "value",
    "threshold",
    "details",
)


def alert_dag(source: str) -> str:
    """The DAG an alert belongs to: its ``source`` (the DAG that raised it)."""
    return source


def alert_sources(store: ResultsStore) -> list[str]:
    """Every ``alert_events.source`` there is (the DAGs that raised alerts)."""
    t = schema.alert_events
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.source).distinct()).scalars())


def alerts(
    store: ResultsStore,
    *,
    sources: Collection[str],
    state: str | None = None,
    severity: str | None = None,
    rule_id: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Alert episodes of ``sources`` (the DAGs the caller may read), newest first (by id).

    ``state``: firing or resolved; ``since``/``until``: alerts active at some time in the range (started
    before ``until``, not resolved before ``since``: as ``alert_events.history`` reads a report period)."""
    limit = check_limit(limit)
    if state is not None and state not in ALERT_STATES:
        raise InvalidFilter("state", f"must be one of {', '.join(ALERT_STATES)}, got {state!r}")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidFilter("severity", f"must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    since_t, until_t = _range(since, until)
    after = decode_cursor(cursor, (int,))
    if not sources:
        return Page([], None, limit)
    t = schema.alert_events
    q = sa.select(*(t.c[c] for c in _ALERT_COLUMNS)).where(t.c.source.in_(sorted(sources)))
    if state:
        q = q.where(t.c.state == state)
    if severity:
        q = q.where(t.c.severity == severity)
    if rule_id:
        q = q.where(t.c.rule_id == rule_id)
    if until_t is not None:
        q = q.where(t.c.started_at < until_t)
    if since_t is not None:
        q = q.where(sa.or_(t.c.resolved_at.is_(None), t.c.resolved_at >= since_t))
    if after is not None:
        q = q.where(t.c.id < after[0])
    with store.engine.connect() as conn:
        rows = _dicts(conn, q.order_by(t.c.id.desc()).limit(limit + 1))
    return _page(rows, limit, lambda r: [r["id"]])


def alert(store: ResultsStore, alert_id: int) -> dict[str, Any] | None:
    """One alert episode with the messages sent for it (``notifications`` rows of its start and resolve
    on each channel, found by the dedup keys its DAG gives them)."""
    t, n = schema.alert_events, schema.notifications
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(*(t.c[c] for c in _ALERT_COLUMNS)).where(t.c.id == alert_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        keys = alert_notification_keys(out)
        sent = (
            _dicts(
                conn,
                sa.select(
                    n.c.dedup_key,
                    n.c.channel,
                    n.c.target,
                    n.c.status,
                    n.c.attempts,
                    n.c.error,
                    n.c.created_at,
                    n.c.sent_at,
                ).where(n.c.dedup_key.in_(sorted(keys))),
            )
            if keys
            else []
        )
    for message in sent:
        message["kind"] = keys[message["dedup_key"]]
    sent.sort(key=lambda m: (m["kind"] != "start", m["channel"], m["dedup_key"]))
    out["notifications"] = sent
    return out


def alert_notification_keys(row: Mapping[str, Any]) -> dict[str, str]:
    """``notifications.dedup_key`` -> ``start``/``resolve`` of every message the alert's DAG would send
    for this episode (empty for a source whose key prefix is unknown)."""
    prefix = ALERT_DEDUP_PREFIXES.get(row["source"])
    if prefix is None:
        return {}
    event = AlertEvent(
        rule_id=row["rule_id"],
        scope_key=row["scope_key"],
        severity=row["severity"],
        state=row["state"],
        started_at=row["started_at"],
        last_evaluated_at=row["last_evaluated_at"],
        source=row["source"],
    )
    return {
        dedup_key(event, kind, channel, prefix=prefix): kind
        for kind in ("start", "resolve")
        for channel in ALERT_CHANNELS
    }


# -- the audit trail of ci_run_action ------------------------------------------------------------------
#: What a list item of ``ci_run_actions`` shows (the detail adds the plan and the calls sent).
_ACTION_COLUMNS = (
    "id",
    "dag_id",
    "airflow_run_id",
    "triggered_by",
    "requested_at",
    "provider",
    "repo",
    "run_id",
    "job_id",
    "action",
    "reason",
    "environment",
    "target",
    "target_sha",
    "deployment_id",
    "dry_run",
    "state",
    "result_attempt",
    "new_deployment_id",
    "outcome",
    "outcome_detail",
    "url",
    "created_at",
    "sent_at",
    "finished_at",
)


def run_actions(
    store: ResultsStore,
    *,
    provider: str | None = None,
    repo: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: dt.datetime | dt.date | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Re-runs, cancels and redeploys asked for through ``ci_run_action``, the newest request first
    (``requested_at``, the Airflow run's ``run_after``; then id): who, what, the state and outcome.
    ``since``: requested at or after it. Rows are stored redacted."""
    limit = check_limit(limit)
    _check_provider(provider)
    if action is not None and action not in RUN_ACTIONS:
        raise InvalidFilter("action", f"must be one of {', '.join(RUN_ACTIONS)}, got {action!r}")
    if outcome is not None and outcome not in RUN_ACTION_OUTCOMES:
        raise InvalidFilter("outcome", f"must be one of {', '.join(RUN_ACTION_OUTCOMES)}, got {outcome!r}")
    since_t = utc(since, "since")
    after = decode_cursor(cursor, (dt.datetime, int))
    t = schema.ci_run_actions
    q = sa.select(*(t.c[c] for c in _ACTION_COLUMNS))
    for column, value in (("provider", provider), ("repo", repo), ("action", action), ("outcome", outcome)):
        if value:
            q = q.where(t.c[column] == value)
    if since_t is not None:
        q = q.where(t.c.requested_at >= since_t)
    if after is not None:
        q = q.where(t.c.requested_at <= after[0], sa.or_(t.c.requested_at < after[0], t.c.id < after[1]))
    q = q.order_by(t.c.requested_at.desc(), t.c.id.desc()).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    return _page(rows, limit, lambda r: [r["requested_at"], r["id"]])


def run_action(store: ResultsStore, action_id: int) -> dict[str, Any] | None:
    """One ``ci_run_action`` request in full: also the calls planned (``plan``), every write sent with
    GitHub's/GitLab's answer (``api_calls``, redacted), and the attempt / jobs it started."""
    t = schema.ci_run_actions
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == action_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["api_calls"] = list(out.get("api_calls") or [])
    out["new_job_ids"] = [str(j) for j in out.get("new_job_ids") or []]
    out["retried_job_ids"] = [str(j) for j in out.get("retried_job_ids") or []]
    return out


# -- reports -----------------------------------------------------------------------------------------
def report_dag(kind: str) -> str:
    """The DAG of a ``reports.kind``: ``monthly`` (and ``monthly:<team>``) -> monthly_report, else
    weekly_report."""
    return MONTHLY_DAG if kind.split(":", 1)[0] == "monthly" else WEEKLY_DAG


def _kind_filter(t: Any, dags: Collection[str]) -> Any:
    parts = []
    if WEEKLY_DAG in dags:
        parts.append(sa.or_(t.c.kind == "weekly", t.c.kind.like("weekly:%")))
    if MONTHLY_DAG in dags:
        parts.append(sa.or_(t.c.kind == "monthly", t.c.kind.like("monthly:%")))
    return sa.or_(*parts) if parts else sa.false()


def reports(
    store: ResultsStore,
    *,
    dags: Collection[str] = (WEEKLY_DAG, MONTHLY_DAG),
    kind: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """Archived reports of the DAGs in ``dags`` (the ones the caller may read), the latest period first:
    kind, period, title, whether it had data, the archive folder."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, (str, int))
    t = schema.reports
    q = sa.select(
        t.c.id,
        t.c.kind,
        t.c.period_start,
        t.c.period_end,
        t.c.archive_path,
        t.c.created_at,
        t.c.updated_at,
        t.c.summary["title"].as_string().label("title"),
        t.c.summary["has_data"].as_boolean().label("has_data"),
    ).where(_kind_filter(t, dags))
    if kind:
        q = q.where(t.c.kind == kind)
    if after is not None:
        try:
            start = dt.date.fromisoformat(after[0])
        except ValueError:
            raise InvalidFilter("cursor", "not a cursor of this list") from None
        q = q.where(t.c.period_start <= start, sa.or_(t.c.period_start < start, t.c.id < after[1]))
    q = q.order_by(t.c.period_start.desc(), t.c.id.desc()).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = _dicts(conn, q)
    return _page(rows, limit, lambda r: [r["period_start"].isoformat(), r["id"]])


def report(store: ResultsStore, report_id: int, *, content: bool = False) -> dict[str, Any] | None:
    """One report row with its summary; ``content``: with the Markdown and HTML stored in the row too."""
    t = schema.reports
    columns = [c for c in t.c if content or c.name not in ("markdown", "html")]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(*columns).where(t.c.id == report_id)).first()
    return dict(row._mapping) if row else None


def archive_name(name: str) -> str:
    """A file name of a report's archive folder (one segment, no ``..``), else :class:`InvalidFilter`."""
    if not isinstance(name, str) or not ARCHIVE_NAME.fullmatch(name) or ".." in name:
        raise InvalidFilter("name", f"must be one file name matching {ARCHIVE_NAME.pattern} (no '..')")
    return name


# -- the event stream --------------------------------------------------------------------------------
#: Kinds of events the stream sends: new rows of these tables.
EVENT_KINDS = ("failure", "alert")


def latest_event_ids(store: ResultsStore) -> dict[str, int]:
    """The highest id of each event table (0 when empty): where a live stream starts."""
    fa, ae = schema.failure_analyses, schema.alert_events
    with store.engine.connect() as conn:
        return {
            "failure": int(conn.execute(sa.select(sa.func.max(fa.c.id))).scalar() or 0),
            "alert": int(conn.execute(sa.select(sa.func.max(ae.c.id))).scalar() or 0),
        }


def new_events(
    store: ResultsStore,
    *,
    after: Mapping[str, int],
    also: Mapping[str, Collection[int]] | None = None,
    limit: int = MAX_LIMIT,
) -> list[dict[str, Any]]:
    """Rows stored after the ids in ``after`` (per kind), and the rows with the ids in ``also`` (ids
    below ``after`` not seen yet: a PostgreSQL transaction can commit after a later one), oldest first
    per kind, at most ``limit`` per kind: ``{"kind", "id", "dag_id", "data"}``.

    ``failure``: a job analysis of ``ci_failure_triage`` (``data``: project, pipeline, job, category,
    root cause, links); ``alert``: an alert episode that started (``dag_id``: its source)."""
    fa, fe, ae = schema.failure_analyses, schema.failure_events, schema.alert_events
    extra = also or {}
    out: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        for kind, table in (("failure", fa), ("alert", ae)):
            wanted = table.c.id > int(after.get(kind, 0))
            if extra.get(kind):
                wanted = sa.or_(wanted, table.c.id.in_(sorted(extra[kind])))
            if kind == "failure":
                q = sa.select(*(fa.c[c] for c in _JOB_COLUMNS), *(fe.c[c] for c in _EVENT_COLUMNS)).select_from(
                    fa.join(fe, fe.c.id == fa.c.event_id)
                )
            else:
                q = sa.select(*(ae.c[c] for c in _ALERT_COLUMNS))
            for row in _dicts(conn, q.where(wanted).order_by(table.c.id).limit(limit)):
                dag = TRIAGE_DAG if kind == "failure" else alert_dag(row["source"])
                if kind == "failure" and row.get("root_cause"):
                    row["root_cause"] = row["root_cause"][:500]
                out.append({"kind": kind, "id": row["id"], "dag_id": dag, "data": row})
    return out
