"""The figures of one report period, read from the results store (definitions §6).

Pure: SQLAlchemy Core through :class:`~devops_automation.store.ResultsStore`, no Airflow. The result of
:func:`report_figures` is JSON-serialisable and deterministic (sorted lists, no "now"): the same store
gives the same figures, so a rebuilt past period equals what was sent then.

**Periods.** ``period="week"``: ``end`` = ``start`` + 7 days; ``period="month"``: ``start`` is the first
of a month at 00:00 and ``end`` the first of the next month. Bounds are calendar bounds in the time zone
of ``start`` (wall clock: a week is 7 local days, a month a calendar month, DST included); pass UTC
datetimes for UTC periods. The history has ``periods`` periods of the same kind ending at ``end``
(oldest first; the last is the report's period, the one before it the previous period). Daily rows
(``project_metrics``, ``health_scores``) belong to a period when their ``day`` is one of its local dates.

**Figures.** Each headline figure is ``{"value", "previous", "change", "series", "unit", "direction"}``:
``change`` = value − previous (``None`` when either is ``None``), ``series`` the value of each period,
oldest first, ``direction`` ``higher_is_better`` / ``lower_is_better`` / ``None``. Sections (:data:`SECTIONS`)
hold their figures, or ``{"no_data": "<why>"}`` when the period has nothing for them.

**Cost.** The CI rows of all periods are read once, as they come (:func:`.series.windows_figures`: the
``periods`` periods plus :data:`.analytics.DEFAULT_HISTORY` for red streaks, a week of runs at a time, the
jobs through one streamed query), without a dict or an object per run and job; each period's figures are
those :func:`.figures.compute_windows` gives (the failure lists only for the period and the previous one,
the only ones shown). 200 repositories x 8 weeks (450,000 runs, 1.4 million jobs) take a few seconds and
a few hundred megabytes (``benchmarks/report.py``). The other tables are read with one query each over
the whole history; Python's cyclic garbage collector is paused meanwhile (nothing read is in a cycle).

Decisions where the definitions are silent are documented at each section's function.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from devops_automation.ci_analytics import analytics, series
from devops_automation.ci_analytics.figures import Figures, median, percentile
from devops_automation.store import ResultsStore, alert_events, schema

HIGHER = "higher_is_better"
LOWER = "lower_is_better"
PERIODS = ("week", "month")
#: The report's sections, in the order of definitions §6.
SECTIONS = (
    "ci_runs",
    "durations",
    "recovery",
    "flaky_jobs",
    "failure_triage",
    "dora",
    "pull_requests_issues",
    "health",
    "alerts",
)
#: Branch names taken as default branches for MTTR (the store does not keep each repository's default).
DEFAULT_BRANCHES = ("main", "master")
#: Rows in each "top" table (failures by workflow, slowest jobs, movers, ...).
TOP = 10
#: ``project_metrics.metric`` names read from ``daily_project_metrics`` (source ``github``): how each is
#: combined over a period's days and projects.
GITHUB_SUMS = ("prs_merged", "prs_opened", "issues_opened", "issues_closed")
GITHUB_MEDIANS = ("time_to_merge_p50_s", "time_to_first_response_p50_s")
SONAR_METRICS = (
    "quality_gate",
    "reliability_rating",
    "security_rating",
    "maintainability_rating",
    "coverage",
    "technical_debt",
)
PROMETHEUS_HEADLINES = {"availability": HIGHER, "error_rate": LOWER, "p95_latency": LOWER}

Window = tuple[dt.datetime, dt.datetime]


# -- periods ------------------------------------------------------------------------------------------
def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _wall(value: dt.datetime, *, days: int = 0, months: int = 0) -> dt.datetime:
    """``value`` moved by local calendar days/months (wall clock in its own time zone)."""
    local = value.replace(tzinfo=None)
    if months:
        years, month = divmod(local.month - 1 + months, 12)
        local = local.replace(year=local.year + years, month=month + 1)
    return (local + dt.timedelta(days=days)).replace(tzinfo=value.tzinfo)


def _same(a: dt.datetime, b: dt.datetime) -> bool:
    return a.astimezone(dt.UTC) == b.astimezone(dt.UTC)


def period_bounds(start: dt.datetime, end: dt.datetime, period: str = "week", periods: int = 8) -> list[Window]:
    """The ``periods`` periods ending at ``end``, oldest first, as UTC ``(start, end)`` pairs.

    Raises ``ValueError`` when ``[start, end)`` is not one ``period`` (see the module docstring)."""
    _aware(start, "start")
    _aware(end, "end")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if not isinstance(periods, int) or periods < 2:
        raise ValueError(f"periods must be an integer of at least 2 (the period and the previous one), got {periods!r}")
    end = end.astimezone(start.tzinfo)
    if period == "week":
        if not _same(_wall(start, days=7), end):
            raise ValueError(f"a week report needs end = start + 7 days: got {start.isoformat()} .. {end.isoformat()}")

        def shift(n: int) -> dt.datetime:
            return _wall(start, days=7 * n)
    else:
        local = start.replace(tzinfo=None)
        if (local.day, local.time()) != (1, dt.time()) or not _same(_wall(start, months=1), end):
            raise ValueError(
                f"a month report needs start = the first of a month at 00:00 and end = the first of the next "
                f"month: got {start.isoformat()} .. {end.isoformat()}"
            )

        def shift(n: int) -> dt.datetime:
            return _wall(start, months=n)

    return [(shift(-n).astimezone(dt.UTC), shift(1 - n).astimezone(dt.UTC)) for n in range(periods - 1, -1, -1)]


def _local_days(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo | None) -> tuple[dt.date, dt.date]:
    """The local dates of ``[start, end)``: ``[first, stop)``."""
    return start.astimezone(tz).date(), end.astimezone(tz).date()


def _period_label(start: dt.datetime, period: str) -> str:
    if period == "month":
        return f"{start.year:04d}-{start.month:02d}"
    year, week, _ = start.date().isocalendar()
    return f"{year:04d}-W{week:02d}"


# -- small helpers ------------------------------------------------------------------------------------
def headline(series: Sequence[float | None], unit: str, direction: str | None) -> dict[str, Any]:
    """A headline figure from its per-period values (oldest first; the last is the period's)."""
    value = series[-1]
    previous = series[-2] if len(series) > 1 else None
    change = value - previous if value is not None and previous is not None else None
    return {
        "value": value,
        "previous": previous,
        "change": change,
        "series": list(series),
        "unit": unit,
        "direction": direction,
    }


def _no_data(why: str) -> dict[str, str]:
    return {"no_data": why}


def _mean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _bucket(windows: Sequence[Window], when: dt.datetime | None) -> int | None:
    if when is None:
        return None
    for position, (start, end) in enumerate(windows):
        if start <= when < end:
            return position
    return None


def _day_bucket(days: Sequence[tuple[dt.date, dt.date]], day: dt.date) -> int | None:
    for position, (first, stop) in enumerate(days):
        if first <= day < stop:
            return position
    return None


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return sorted({value} if isinstance(value, str) else set(value))


# -- the report ---------------------------------------------------------------------------------------
@analytics._collector_paused
def report_figures(
    store: ResultsStore,
    *,
    start: dt.datetime,
    end: dt.datetime,
    period: str = "week",
    periods: int = 8,
    projects: str | Iterable[str] | None = None,
    repos: str | Iterable[str] | None = None,
    default_branches: Collection[str] = DEFAULT_BRANCHES,
    top: int = TOP,
) -> dict[str, Any]:
    """Every figure of the report of ``[start, end)`` (see the module docstring)::

        {"period": {"kind", "label", "start", "end"}, "previous_period": {"start", "end"},
         "periods": [{"start", "end"}, ...],            # oldest first, the last is "period"
         "scope": {"projects": [...] | None, "repos": [...] | None},
         "sections_order": [...], "has_data": bool,
         "sections": {name: {...} | {"no_data": "..."}}}

    ``repos`` filters the CI tables (``ci_*``, and ``failure_events.project_path``), ``projects`` the daily
    tables (``project_metrics``, ``health_scores``); alerts are kept when their scope names one of either
    (both ``None``: everything). A team report passes its repositories and its projects.
    """
    windows = period_bounds(start, end, period, periods)
    tz = start.tzinfo
    days = [_local_days(s, e, tz) for s, e in windows]
    repo_list, project_list = _as_list(repos), _as_list(projects)
    ci = _ci_sections(store, windows, repo_list, set(default_branches), top)
    sections = {
        **ci,
        "failure_triage": _failure_triage(store, windows, repo_list, top),
        "pull_requests_issues": _pull_requests_issues(store, days, project_list),
        "health": _health(store, days, project_list, top),
        "alerts": _alerts(store, windows, repo_list, project_list),
    }
    current, previous = windows[-1], windows[-2]
    return {
        "period": {
            "kind": period,
            "label": _period_label(start, period),
            "start": _iso(current[0]),
            "end": _iso(current[1]),
        },
        "previous_period": {"start": _iso(previous[0]), "end": _iso(previous[1])},
        "periods": [{"start": _iso(s), "end": _iso(e)} for s, e in windows],
        "scope": {"projects": project_list, "repos": repo_list},
        "sections_order": list(SECTIONS),
        "has_data": any("no_data" not in sections[name] for name in SECTIONS),
        "sections": {name: sections[name] for name in SECTIONS},
    }


# -- CI (sections 1-4 and 6) --------------------------------------------------------------------------
def _ci_sections(
    store: ResultsStore, windows: list[Window], repos: list[str] | None, default_branches: set[str], top: int
) -> dict[str, dict[str, Any]]:
    """Sections 1-4 and 6 from one read of the CI rows of every period (:func:`.series.windows_figures`).

    The figures of each period are :class:`.figures.Figures` of that window, as
    :func:`.analytics.window_summary` computes them (the failure lists only for the period and the
    previous one); red streaks are looked up :data:`.analytics.DEFAULT_HISTORY` before the oldest period."""
    got = series.windows_figures(store, windows=windows, detail=2, history=analytics.DEFAULT_HISTORY, repos=repos)
    totals = got.totals
    jobs = _job_durations(got.job_durations)
    return {
        "ci_runs": _ci_runs(totals, top),
        "durations": _durations(totals, got.workflows, jobs, top),
        "recovery": _recovery(totals, default_branches),
        "flaky_jobs": _flaky(totals, top),
        "dora": _dora(totals),
    }


def _series(totals: Sequence[Figures], get: Callable[[Figures], Any]) -> list[Any]:
    return [get(f) for f in totals]


def _failed_runs(f: Figures) -> int:
    return f.runs_by_status.get("failure", 0) + f.runs_by_status.get("timed_out", 0)


def _ci_runs(totals: Sequence[Figures], top: int) -> dict[str, Any]:
    """Runs, success rates and failures by workflow / branch / actor (lists as the figures order them:
    most failures first)."""
    now = totals[-1]
    if not now.runs:
        return _no_data("no CI run finished in the period")
    return {
        "runs": headline(_series(totals, lambda f: f.runs), "count", None),
        "failed_runs": headline(_series(totals, _failed_runs), "count", LOWER),
        "success_rate": headline(_series(totals, lambda f: f.success_rate), "ratio", HIGHER),
        "first_attempt_success_rate": headline(
            _series(totals, lambda f: f.first_attempt_success_rate), "ratio", HIGHER
        ),
        "runs_by_status": dict(now.runs_by_status),
        "failures_by_workflow": now.failures_by_workflow[:top],
        "failures_by_branch": now.failures_by_branch[:top],
        "failures_by_actor": now.failures_by_actor[:top],
    }


def _job_durations(values: Sequence[Mapping[tuple[Any, ...], list[float]]]) -> list[dict[str, Any]]:
    """The slowest-job rows from :attr:`.series.WindowsFigures.job_durations` of the previous period and
    the period: per (provider, repo, workflow, job), the ``duration_s`` of every job with a verdict of the
    attempts that completed in the period.

    Decision: jobs are placed by their attempt's finish time (not by the final-attempt rule of the run
    figures): a job's duration is the time that execution took, whichever attempt it belongs to."""
    previous, current = values[0], values[-1]
    out = []
    for key in sorted(current, key=lambda k: tuple(str(v) for v in k)):
        provider, repo, workflow, name = key
        out.append(
            {
                "provider": provider,
                "repo": repo,
                "workflow": workflow,
                "job": name,
                "executions": len(current[key]),
                "duration_p50_s": percentile(current[key], 0.5),
                "duration_p90_s": percentile(current[key], 0.9),
                "previous_p50_s": percentile(previous.get(key, ()), 0.5),
            }
        )
    return out


def _slowest(items: list[dict[str, Any]], top: int, *keys: str) -> list[dict[str, Any]]:
    """Highest p50 first, then by key."""
    return sorted(items, key=lambda i: (-(i["duration_p50_s"] or 0.0), *(str(i[k]) for k in keys)))[:top]


def _durations(
    totals: Sequence[Figures],
    per_workflow: Mapping[tuple[Any, ...], list[dict[str, Any]]],
    jobs: list[dict[str, Any]],
    top: int,
) -> dict[str, Any]:
    """p50/p90 of run durations and queue times (definitions §3), the slowest workflows (per provider,
    repository and workflow, by p50 duration of the period's runs) and the slowest jobs (by p50
    duration)."""
    now = totals[-1]
    if now.duration_p50_s is None and now.queue_run_p50_s is None and not jobs:
        return _no_data("no CI run with a duration or queue time finished in the period")
    workflows = [
        {
            "provider": provider,
            "repo": repo,
            "workflow": workflow,
            "runs": current["runs"],
            "duration_p50_s": current["duration_p50_s"],
            "duration_p90_s": current["duration_p90_s"],
            "previous_p50_s": previous["duration_p50_s"],
        }
        for (provider, repo, workflow), (previous, current) in per_workflow.items()
        if current["duration_p50_s"] is not None
    ]
    return {
        **{
            name: headline(_series(totals, lambda f, name=name: getattr(f, name)), "s", LOWER)
            for name in (
                "duration_p50_s",
                "duration_p90_s",
                "queue_run_p50_s",
                "queue_run_p90_s",
                "queue_job_p50_s",
                "queue_job_p90_s",
            )
        },
        "slowest_workflows": _slowest(workflows, top, "provider", "repo", "workflow"),
        "slowest_jobs": _slowest(jobs, top, "provider", "repo", "workflow", "job"),
    }


def _default_mttr(f: Figures, default_branches: set[str]) -> float | None:
    return median(s["length_s"] for s in f.streaks_ended if s["start_known"] and s.get("branch") in default_branches)


def _red_branches(f: Figures) -> int:
    return len({(s["provider"], s["repo"], s["branch"]) for s in f.open_streaks})


def _recovery(totals: Sequence[Figures], default_branches: set[str]) -> dict[str, Any]:
    """MTTR (red → green, definitions §3) of the streaks on default branches (:data:`DEFAULT_BRANCHES`
    by name) that ended in the period, and the branches red at the period's end (every branch: one
    entry per workflow and branch, as the figures list open streaks; ``red_branches`` counts distinct
    provider/repo/branch)."""
    now = totals[-1]
    ended = [s for s in now.streaks_ended if s.get("branch") in default_branches]
    if not ended and not now.open_streaks:
        return _no_data("no red streak ended in the period and no branch was red at its end")
    return {
        "mttr_default_branches_s": headline(_series(totals, lambda f: _default_mttr(f, default_branches)), "s", LOWER),
        "red_branches": headline(_series(totals, _red_branches), "count", LOWER),
        "default_branches": sorted(default_branches),
        "streaks_ended_default_branches": ended,
        "red_now": now.open_streaks,
    }


def _flaky(totals: Sequence[Figures], top: int) -> dict[str, Any]:
    """Flaky jobs (definitions §3: failed and passed on the same commit) and minutes spent on re-runs."""
    now = totals[-1]
    if now.flaky_rate is None and not now.rerun_attempts:
        return _no_data("no job result and no re-run in the period")
    return {
        "flaky_jobs": headline(_series(totals, lambda f: len(f.flaky_jobs)), "count", LOWER),
        "flaky_rate": headline(_series(totals, lambda f: f.flaky_rate), "ratio", LOWER),
        "rerun_minutes": headline(_series(totals, lambda f: f.rerun_minutes), "min", LOWER),
        "rerun_attempts": headline(_series(totals, lambda f: f.rerun_attempts), "count", LOWER),
        "jobs": now.flaky_jobs[:top],
    }


def _dora_value(f: Figures, name: str) -> Any:
    return f.dora[name] if f.dora else None


def _dora(totals: Sequence[Figures]) -> dict[str, Any]:
    """The DORA four keys of the period (definitions §4) where deployments to production-like
    environments exist."""
    now = totals[-1]
    if not now.dora or not (now.dora["deployments"] or now.dora["failed_deployments"]):
        return _no_data("no deployment to a production environment in the period")
    keys = (
        ("deployments", "count", HIGHER),
        ("deployments_per_day", "1/d", HIGHER),
        ("lead_time_p50_s", "s", LOWER),
        ("change_failure_rate", "ratio", LOWER),
        ("recovery_time_p50_s", "s", LOWER),
    )
    return {
        **{
            name: headline(_series(totals, lambda f, name=name: _dora_value(f, name)), unit, direction)
            for name, unit, direction in keys
        },
        "bands": dict(now.dora["bands"]),
        "environments": list(now.dora["environments"]),
        "rollbacks": now.dora["rollback_deployments"],
    }


# -- section 5: failure triage ------------------------------------------------------------------------
def _failure_triage(store: ResultsStore, windows: list[Window], repos: list[str] | None, top: int) -> dict[str, Any]:
    """Top failure categories and recurring fingerprints from ``ci_failure_triage``'s tables.

    Decisions: an analysis (one per event and job) belongs to the period its failure was received in
    (``failure_events.received_at``); ``repos`` filter on ``failure_events.project_path``. A fingerprint
    *recurs* when it was seen at least twice in the period, or in the period and before it.
    ``occurrences_until_end`` counts the analyses received before the period's end (not the live
    ``failure_fingerprints.occurrences``, which later failures change)."""
    fa, fe, ff = schema.failure_analyses, schema.failure_events, schema.failure_fingerprints
    end = windows[-1][1]
    q = (
        sa.select(fe.c.received_at, fa.c.category, fa.c.fingerprint)
        .select_from(fa.join(fe, fe.c.id == fa.c.event_id))
        .where(fe.c.received_at < end)
    )
    if repos is not None:
        q = q.where(fe.c.project_path.in_(repos))
    per_window: list[Counter[str]] = [Counter() for _ in windows]
    in_period: Counter[str] = Counter()
    until_end: Counter[str] = Counter()
    before: set[str] = set()
    start = windows[-1][0]
    with store.engine.connect() as conn:
        for received, category, fingerprint in conn.execute(q):
            position = _bucket(windows, received)
            if position is not None:
                per_window[position][category] += 1
            if fingerprint:
                until_end[fingerprint] += 1
                if received >= start:
                    in_period[fingerprint] += 1
                else:
                    before.add(fingerprint)
        recurring_keys = sorted(f for f, n in in_period.items() if n >= 2 or f in before)
        known = {}
        if recurring_keys:
            cols = (ff.c.fingerprint, ff.c.project_path, ff.c.job_name, ff.c.first_error, ff.c.first_seen)
            for row in conn.execute(sa.select(*cols).where(ff.c.fingerprint.in_(recurring_keys))):
                known[row.fingerprint] = row
    current, previous = per_window[-1], per_window[-2]
    if not current:
        return _no_data("no CI failure was analysed by ci_failure_triage in the period")
    categories = [
        {"category": c, "failures": n, "previous": previous.get(c, 0)}
        for c, n in sorted(current.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    recurring = []
    for fingerprint in recurring_keys:
        row = known.get(fingerprint)
        recurring.append(
            {
                "fingerprint": fingerprint,
                "project_path": row.project_path if row else None,
                "job_name": row.job_name if row else None,
                "first_error": row.first_error if row else None,
                "first_seen": _iso(row.first_seen) if row else None,
                "occurrences_in_period": in_period[fingerprint],
                "occurrences_until_end": until_end[fingerprint],
            }
        )
    recurring.sort(key=lambda r: (-r["occurrences_in_period"], -r["occurrences_until_end"], r["fingerprint"]))
    return {
        "analysed_failures": headline([sum(c.values()) for c in per_window], "count", LOWER),
        "top_categories": categories[:top],
        "recurring_fingerprints": recurring[:top],
    }


# -- daily tables (sections 7 and 8) ------------------------------------------------------------------
def _metric_rows(
    store: ResultsStore,
    days: Sequence[tuple[dt.date, dt.date]],
    projects: list[str] | None,
    where: Any,
) -> list[tuple[int, str, dt.date, str, str, float | None, str | None, str | None]]:
    """``(period, source, day, project, metric, value, value_raw, unit)`` of the ``project_metrics`` rows
    of the periods, sorted (so sums are added in the same order on every database)."""
    t = schema.project_metrics
    q = sa.select(t.c.source, t.c.day, t.c.project, t.c.metric, t.c.value, t.c.value_raw, t.c.unit).where(
        t.c.day >= days[0][0], t.c.day < days[-1][1], where
    )
    if projects is not None:
        q = q.where(t.c.project.in_(projects))
    firsts = [first for first, _ in days]
    out = []
    with store.engine.connect() as conn:
        for source, day, project, metric, value, raw, unit in analytics.driver_rows(conn, q):
            position = bisect_right(firsts, day) - 1
            if position >= 0 and day < days[position][1]:
                out.append((position, source, day, project, metric, value, raw, unit))
    out.sort(key=_METRIC_ORDER)
    return out


_METRIC_ORDER = itemgetter(0, 1, 2, 3, 4)


def _pull_requests_issues(
    store: ResultsStore, days: Sequence[tuple[dt.date, dt.date]], projects: list[str] | None
) -> dict[str, Any]:
    """PRs merged, time to merge, issues opened/closed and time to first response from the
    ``project_metrics`` rows of source ``github`` (``daily_project_metrics``).

    Counts (:data:`GITHUB_SUMS`) are summed over the period's days and projects; times
    (:data:`GITHUB_MEDIANS`, each a day's median) are the median of the daily values of every project
    (a median of medians: the stored rows keep no single pull request). Rows without a value are no data."""
    t = schema.project_metrics
    names = (*GITHUB_SUMS, *GITHUB_MEDIANS)
    rows = _metric_rows(store, days, projects, sa.and_(t.c.source == "github", t.c.metric.in_(names)))
    values: dict[str, list[list[float]]] = {n: [[] for _ in days] for n in names}
    per_project: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    last = len(days) - 1
    for position, _, _, project, metric, value, _, _ in rows:
        if value is None:
            continue
        values[metric][position].append(value)
        if metric in GITHUB_SUMS and position >= last - 1:
            per_project[(project, metric)][position - last + 1] += value
    if not any(values[n][-1] for n in names):
        return _no_data("no GitHub pull request or issue figures were collected for the period")
    out: dict[str, Any] = {}
    for name in GITHUB_SUMS:
        direction = HIGHER if name == "prs_merged" else None
        series = [sum(v) if v else None for v in values[name]]
        out[name] = headline(series, "count", direction)
    for name in GITHUB_MEDIANS:
        out[name] = headline([median(v) for v in values[name]], "s", LOWER)
    projects_seen = sorted({p for p, _ in per_project})
    out["projects"] = [
        {
            "project": project,
            **{
                name: {"value": per_project[(project, name)][1], "previous": per_project[(project, name)][0]}
                for name in GITHUB_SUMS
                if (project, name) in per_project
            },
        }
        for project in projects_seen
    ]
    return out


def _latest(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[int, str, str], tuple[Any, ...]]:
    """Per (period, project, metric), the row of the latest day (rows sorted by day)."""
    latest: dict[tuple[int, str, str], tuple[Any, ...]] = {}
    for row in rows:
        position, _, _, project, metric = row[:5]
        latest[(position, project, metric)] = row
    return latest


def _health(
    store: ResultsStore, days: Sequence[tuple[dt.date, dt.date]], projects: list[str] | None, top: int
) -> dict[str, Any]:
    """Health scores and movers, SonarQube gates and ratings, Prometheus SLO figures.

    Decisions: a project's score of a period is its row of the latest day of the period that has one
    (normally the last day); movers compare it with the previous period's, largest change first. The
    headline is the mean score over projects. SonarQube: each project's latest value in the period;
    ``quality_gates_failing`` counts the projects whose latest gate is ERROR (value 0). Prometheus: each
    project's mean of the daily values in the period; the headlines of the conventional names
    (:data:`PROMETHEUS_HEADLINES`) are the mean over projects."""
    scores = _health_scores(store, days, projects, top)
    t = schema.project_metrics
    rows = _metric_rows(
        store,
        days,
        projects,
        sa.or_(sa.and_(t.c.source == "sonarqube", t.c.metric.in_(SONAR_METRICS)), t.c.source == "prometheus"),
    )
    sonar = _sonarqube([r for r in rows if r[1] == "sonarqube"], len(days))
    prometheus = _prometheus([r for r in rows if r[1] == "prometheus"], len(days))
    parts = {"scores": scores, "sonarqube": sonar, "prometheus": prometheus}
    if all("no_data" in part for part in parts.values()):
        return _no_data("no health score, SonarQube or Prometheus figure was collected for the period")
    return parts


def _health_scores(
    store: ResultsStore, days: Sequence[tuple[dt.date, dt.date]], projects: list[str] | None, top: int
) -> dict[str, Any]:
    h = schema.health_scores
    q = sa.select(h.c.day, h.c.project, h.c.score, h.c.grade).where(h.c.day >= days[0][0], h.c.day < days[-1][1])
    if projects is not None:
        q = q.where(h.c.project.in_(projects))
    latest: dict[tuple[int, str], tuple[dt.date, float, str | None]] = {}
    with store.engine.connect() as conn:
        for day, project, score, grade in sorted(conn.execute(q), key=lambda r: (r[0], r[1])):
            position = _day_bucket(days, day)
            if position is not None:
                latest[(position, project)] = (day, score, grade)
    last = len(days) - 1
    now = {p: v for (i, p), v in latest.items() if i == last}
    if not now:
        return _no_data("no health score was computed in the period")
    series = [_mean(v[1] for (i, _), v in sorted(latest.items()) if i == position) for position in range(len(days))]
    table = []
    for project in sorted(now):
        day, score, grade = now[project]
        before = latest.get((last - 1, project))
        previous = before[1] if before else None
        table.append(
            {
                "project": project,
                "day": day.isoformat(),
                "score": score,
                "grade": grade,
                "previous": previous,
                "previous_grade": before[2] if before else None,
                "change": score - previous if previous is not None else None,
            }
        )
    movers = sorted((r for r in table if r["change"]), key=lambda r: (-abs(r["change"]), r["project"]))
    return {"mean_score": headline(series, "score", HIGHER), "projects": table, "movers": movers[:top]}


def _sonarqube(rows: list[tuple[Any, ...]], periods: int) -> dict[str, Any]:
    latest = _latest(rows)
    last = periods - 1
    now = {(p, m): r for (i, p, m), r in latest.items() if i == last}
    if not now:
        return _no_data("no SonarQube figure was collected for the period")

    def failing(position: int) -> int | None:
        gates = [r[5] for (i, _, m), r in latest.items() if i == position and m == "quality_gate" and r[5] is not None]
        return sum(1 for v in gates if v == 0.0) if gates else None

    table = []
    for project in sorted({p for p, _ in now}):
        entry: dict[str, Any] = {"project": project}
        for metric in SONAR_METRICS:
            row = now.get((project, metric))
            before = latest.get((last - 1, project, metric))
            entry[metric] = {
                "value": row[5] if row else None,
                "previous": before[5] if before else None,
                **({"status": row[6] if row else None} if metric == "quality_gate" else {}),
            }
        table.append(entry)
    return {
        "quality_gates_failing": headline([failing(i) for i in range(periods)], "count", LOWER),
        "projects": table,
    }


def _prometheus(rows: list[tuple[Any, ...]], periods: int) -> dict[str, Any]:
    values: dict[tuple[int, str, str], list[float]] = defaultdict(list)
    units: dict[str, str | None] = {}
    for position, _, _, project, metric, value, _, unit in rows:
        if value is not None:
            values[(position, project, metric)].append(value)
            units.setdefault(metric, unit)
    means = {k: sum(v) / len(v) for k, v in values.items()}
    last = periods - 1
    now = sorted((p, m) for i, p, m in means if i == last)
    if not now:
        return _no_data("no Prometheus figure was collected for the period")
    out: dict[str, Any] = {}
    for metric, direction in sorted(PROMETHEUS_HEADLINES.items()):
        if any(m == metric for _, m in now):
            series = [
                _mean(v for (i, _, m), v in sorted(means.items()) if i == pos and m == metric) for pos in range(periods)
            ]
            out[metric] = headline(series, units.get(metric) or "", direction)
    out["projects"] = [
        {
            "project": project,
            "metric": metric,
            "unit": units.get(metric),
            "value": means[(last, project, metric)],
            "previous": means.get((last - 1, project, metric)),
        }
        for project, metric in now
    ]
    return out


# -- section 9: alerts --------------------------------------------------------------------------------
def _alerts(
    store: ResultsStore, windows: list[Window], repos: list[str] | None, projects: list[str] | None
) -> dict[str, Any]:
    """Alerts active in the period (:func:`.alert_events.history`), every source.

    ``alerts_fired`` counts the episodes that started in each period; ``alerts`` lists those active in
    the period (``new`` when they started in it), with their state as of the period's end (an episode
    resolved after it shows as firing, without ``resolved_at``), so a rebuilt report does not change
    when alerts resolve later. Scope filter: an alert is kept when its ``scope_key``, or one of its
    ``:``-separated parts, is one of ``repos`` or ``projects``."""
    start, end = windows[-1]
    events = alert_events.history(store, since=windows[0][0], until=end)
    names = set(repos or ()) | set(projects or ())
    if repos is not None or projects is not None:
        events = [e for e in events if e.scope_key in names or names & set(e.scope_key.split(":"))]
    fired = [0 for _ in windows]
    for event in events:
        position = _bucket(windows, event.started_at)
        if position is not None:
            fired[position] += 1
    active = [e for e in events if e.started_at < end and (e.resolved_at is None or e.resolved_at >= start)]
    if not active:
        return _no_data("no alert was firing in the period")
    listed = []
    for e in active:
        resolved = e.resolved_at is not None and e.resolved_at < end
        listed.append(
            {
                "source": e.source,
                "rule_id": e.rule_id,
                "scope_key": e.scope_key,
                "severity": e.severity,
                "kind": e.kind,
                "started_at": _iso(e.started_at),
                "resolved_at": _iso(e.resolved_at) if resolved else None,
                "state": "resolved" if resolved else "firing",
                "new": e.started_at >= start,
            }
        )
    listed.sort(key=lambda a: (a["started_at"], a["source"], a["rule_id"], a["scope_key"]))
    return {
        "alerts_fired": headline(fired, "count", LOWER),
        "firing_at_end": sum(1 for a in listed if a["state"] == "firing"),
        "alerts": listed,
    }
