"""What the alert rules look at: the stored figures turned into one observation per rule kind and
scope (repository × workflow × branch, or × job for flaky jobs), for the windows the rules ask for.

No Airflow: :func:`observations` takes the results store and the interval's end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from devops_automation.ci_analytics import analytics
from devops_automation.store import ResultsStore
from devops_automation.workflows.ci_pipeline_analytics import alert_rules as ar

GROUP = ("repo", "workflow", "branch")
DAY = dt.timedelta(days=1)


def _scope(key: dict[str, Any], job: str | None = None) -> ar.ScopeKey:
    return ar.ScopeKey(
        provider=str(key.get("provider") or ""),
        repo=str(key.get("repo") or ""),
        workflow=str(key.get("workflow") or ""),
        branch=str(key.get("branch") or "*"),
        job=job,
    )


def _groups(store: ResultsStore, start: dt.datetime, end: dt.datetime, group_by: Any = GROUP) -> list[dict[str, Any]]:
    summary = analytics.window_summary(store, start=start, end=end, group_by=group_by, with_previous=False)
    return [{"key": g["key"], **(g["current"] or {})} for g in summary["groups"]]


def _decided(figures: dict[str, Any]) -> tuple[int, int]:
    by = figures.get("runs_by_status") or {}
    successes = int(by.get("success", 0))
    return successes + int(by.get("failure", 0)) + int(by.get("timed_out", 0)), successes


def observations(store: ResultsStore, rules: Iterable[ar.Rule], *, end: dt.datetime) -> list[Any]:
    """One observation per (needed kind and window, scope with data) at the interval's end."""
    out: list[Any] = []
    for need in ar.needs(rules):
        days = need.window_days or 1
        start = end - days * DAY
        if need.kind == "success_rate_below":
            for g in _groups(store, start, end):
                runs, successes = _decided(g)
                out.append(ar.SuccessRate(_scope(g["key"]), days, runs, successes))
        elif need.kind == "queue_p90_above":
            out += [
                ar.QueueP90(_scope(g["key"]), days, g.get("queue_run_p90_s"), int(g.get("runs", 0)))
                for g in _groups(store, start, end)
            ]
        elif need.kind == "rerun_minutes_above":
            out += [
                ar.RerunMinutes(_scope(g["key"]), days, float(g.get("rerun_minutes") or 0.0))
                for g in _groups(store, start, end)
            ]
        elif need.kind == "duration_regression":
            weeks = need.baseline_weeks or 4
            baseline = {
                ar.ScopeKey(**_scope(g["key"]).as_dict()): g for g in _groups(store, start - weeks * 7 * DAY, start)
            }
            for g in _groups(store, start, end):
                scope = _scope(g["key"])
                base = baseline.get(scope, {})
                out.append(
                    ar.DurationP90(
                        scope, days, weeks, g.get("duration_p90_s"), int(g.get("runs", 0)),
                        base.get("duration_p90_s"), int(base.get("runs", 0)),
                    )
                )  # fmt: skip
        elif need.kind == "red_longer_than":
            summary = analytics.window_summary(store, start=end - DAY, end=end, with_previous=False)
            for streak in (summary["total"]["current"] or {}).get("open_streaks") or []:
                since = dt.datetime.fromisoformat(streak["started_at"]) if streak.get("started_at") else None
                out.append(ar.RedStreak(_scope(streak), since, int(streak.get("failed_runs", 0))))
        elif need.kind == "new_flaky_job":
            weeks = need.baseline_weeks or 4
            known = _flaky(store, start - weeks * 7 * DAY, start)
            for job in _flaky_list(store, start, end):
                key = (job["provider"], job["repo"], str(job["workflow"] or ""), str(job["job"]))
                scope = _scope({**job, "branch": "*"}, job=str(job["job"]))
                out.append(ar.FlakyJob(scope, days, weeks, int(job["flaky_shas"]), int(job["shas"]), key in known))
    return out


def _flaky_list(store: ResultsStore, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    summary = analytics.window_summary(store, start=start, end=end, with_previous=False)
    return list((summary["total"]["current"] or {}).get("flaky_jobs") or [])


def _flaky(store: ResultsStore, start: dt.datetime, end: dt.datetime) -> set[tuple[str, str, str, str]]:
    return {(j["provider"], j["repo"], str(j["workflow"] or ""), str(j["job"])) for j in _flaky_list(store, start, end)}
