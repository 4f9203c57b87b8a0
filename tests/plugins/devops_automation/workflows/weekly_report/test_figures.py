"""The figures of a report period from a small fixed store (SQLite and PostgreSQL), against values
computed by hand; period bounds for weeks and calendar months."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.ci_analytics import analytics
from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.weekly_report import figures as rf

T = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # a Monday: the report's week is [T, T + 7 d)
WEEK = dt.timedelta(days=7)
COLLECTED = T + dt.timedelta(days=30)
NONE5 = [None] * 5


def at(days: float = 0.0) -> dt.datetime:
    return T + dt.timedelta(days=days)


def run(run_id: str, status: str, days: float, duration: float, queue: float, **kw: Any) -> dict[str, Any]:
    finished = at(days)
    row = {
        "provider": "github",
        "repo": "acme/api",
        "run_id": run_id,
        "attempt": 1,
        "run_number": int(run_id),
        "workflow": "CI",
        "branch": "main",
        "sha": f"s{run_id}",
        "actor": "alice",
        "status": status,
        "created_at": T - dt.timedelta(days=40),
        "finished_at": finished,
        "duration_s": duration,
        "queue_s": queue,
        "url": f"https://ci.example/{run_id}",
        "collected_at": COLLECTED,
    }
    return {**row, **kw}


def job(run_id: str, job_id: str, name: str, status: str, duration: float, attempt: int = 1) -> dict[str, Any]:
    return {
        "provider": "github",
        "repo": "acme/api",
        "run_id": run_id,
        "attempt": attempt,
        "job_id": job_id,
        "name": name,
        "status": status,
        "duration_s": duration,
        "queue_s": 1.0,
    }


RUNS = [
    run("1", "success", -10, 50, 5),  # two weeks back
    run("2", "success", -5, 100, 10),  # previous week
    run("3", "failure", -4, 200, 20, actor="bob"),  # main red from T - 4 d
    run("4", "failure", 0.5, 250, 25),  # run 4 attempt 1 fails, attempt 2 (T + 1 d) is green: streak ends
    run("4", "success", 1, 300, 30, attempt=2),
    run("5", "failure", 2, 400, 40, actor="bob"),  # main red again, still red at the end
    run("6", "success", 3, 500, 50, workflow="Docs", branch="feat", actor="carol"),
]
JOBS = [
    job("3", "30", "test", "failure", 150),
    job("4", "41", "test", "failure", 80),
    job("4", "42", "test", "success", 60, attempt=2),
    job("4", "43", "lint", "success", 30, attempt=2),
    job("5", "50", "test", "failure", 70),
    job("6", "60", "build", "success", 450),
]


def metric(day: float, source: str, project: str, name: str, value: float, raw: str | None = None) -> dict:
    return {
        "day": at(day).date(),
        "source": source,
        "project": project,
        "metric": name,
        "value_raw": raw if raw is not None else str(value),
        "value": value,
        "unit": None,
        "collected_at": COLLECTED,
    }


METRICS = [
    metric(0, "github", "api", "prs_merged", 2),
    metric(1, "github", "api", "prs_merged", 3),
    metric(-7, "github", "api", "prs_merged", 1),
    metric(0, "github", "api", "time_to_merge_p50_s", 100),
    metric(1, "github", "api", "time_to_merge_p50_s", 300),
    metric(2, "github", "api", "time_to_merge_p50_s", 200),
    metric(1, "github", "api", "issues_opened", 4),
    metric(6, "sonarqube", "api", "quality_gate", 0.0, "ERROR"),
    metric(6, "sonarqube", "api", "reliability_rating", 2.0),
    metric(-1, "sonarqube", "api", "quality_gate", 1.0, "OK"),
    metric(0, "prometheus", "api", "availability", 99.0),
    metric(1, "prometheus", "api", "availability", 99.5),
    metric(-3, "prometheus", "api", "availability", 99.9),
]
SCORES = [("api", 6, 80.0, "B"), ("api", -1, 70.0, "C"), ("web", 6, 60.0, "C"), ("web", -1, 65.0, "C")]


def seed(store: ResultsStore) -> None:
    with store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), RUNS)
        conn.execute(sa.insert(schema.ci_jobs), JOBS)
        conn.execute(sa.insert(schema.project_metrics), METRICS)
        conn.execute(
            sa.insert(schema.health_scores),
            [
                {"project": p, "day": at(d).date(), "score": s, "grade": g, "components": {}, "created_at": COLLECTED}
                for p, d, s, g in SCORES
            ],
        )
        triage = [  # (pipeline, received day, job id, category, fingerprint)
            ("900", -3, "1", "infrastructure", "fp2"),
            ("901", 2, "2", "test_failure", "fp1"),
            ("902", 3, "3", "test_failure", "fp1"),
            ("903", 3, "4", "infrastructure", "fp2"),
            ("904", 4, "5", "config", "fp3"),
        ]
        for pipeline, day, job_id, category, fingerprint in triage:
            event = conn.execute(
                sa.insert(schema.failure_events)
                .values(
                    provider="gitlab",
                    project_id="7",
                    project_path="acme/api",
                    pipeline_id=pipeline,
                    source="webhook",
                    received_at=at(day),
                )
                .returning(schema.failure_events.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(schema.failure_analyses).values(
                    event_id=event,
                    job_id=job_id,
                    category=category,
                    analyser="heuristic",
                    fingerprint=fingerprint,
                    created_at=at(day),
                )
            )
        conn.execute(
            sa.insert(schema.failure_fingerprints),
            [
                {
                    "fingerprint": fp,
                    "project_path": "acme/api",
                    "job_name": "test",
                    "first_error": f"error {fp}",
                    "occurrences": 9,  # live counter: not what the report shows
                    "first_seen": at(first),
                    "last_seen": at(5),
                }
                for fp, first in (("fp1", 2), ("fp2", -3), ("fp3", 4))
            ],
        )
        alert = {"severity": "warning", "value": 1.0, "threshold": 0.5, "details": {"kind": "success_rate"}}
        conn.execute(
            sa.insert(schema.alert_events),
            [
                {  # fired in the week, resolved after it: firing at the week's end
                    **alert,
                    "source": "ci_pipeline_analytics",
                    "rule_id": "low-success",
                    "scope_key": "github:acme/api:CI:main",
                    "state": "resolved",
                    "started_at": at(2),
                    "resolved_at": at(9),
                    "last_evaluated_at": at(9),
                },
                {  # the previous week only
                    **alert,
                    "source": "daily_project_metrics",
                    "rule_id": "health",
                    "scope_key": "web",
                    "state": "resolved",
                    "started_at": at(-5),
                    "resolved_at": at(-4),
                    "last_evaluated_at": at(-4),
                },
            ],
        )


@pytest.fixture
def store(results_store: ResultsStore) -> ResultsStore:
    seed(results_store)
    return results_store


def series(*last: Any, before: Any = None) -> list[Any]:
    return [before] * (8 - len(last)) + list(last)


def test_week_headlines_changes_and_series(store: ResultsStore) -> None:
    got = rf.report_figures(store, start=T, end=T + WEEK)
    assert got["period"] == {"kind": "week", "label": "2026-W47", "start": T.isoformat(), "end": at(7).isoformat()}
    assert got["previous_period"] == {"start": at(-7).isoformat(), "end": T.isoformat()}
    assert got["periods"][0] == {"start": at(-49).isoformat(), "end": at(-42).isoformat()}
    assert got["has_data"] is True
    s = got["sections"]
    assert list(s) == list(rf.SECTIONS)

    ci = s["ci_runs"]
    assert ci["runs"] == {
        "value": 3,
        "previous": 2,
        "change": 1,
        "series": series(1, 2, 3, before=0),
        "unit": "count",
        "direction": None,
    }
    assert ci["success_rate"]["value"] == pytest.approx(2 / 3)
    assert ci["success_rate"]["previous"] == 0.5
    assert ci["success_rate"]["change"] == pytest.approx(2 / 3 - 0.5)
    assert ci["success_rate"]["series"][:6] == [*NONE5, 1.0]
    assert ci["first_attempt_success_rate"]["value"] == pytest.approx(1 / 3)  # run 4 failed first
    assert ci["failed_runs"]["series"] == series(0, 1, 1, before=0)
    assert ci["failures_by_actor"] == [{"actor": "bob", "failures": 1}]
    assert ci["failures_by_workflow"] == [{"provider": "github", "repo": "acme/api", "workflow": "CI", "failures": 1}]

    durations = s["durations"]
    assert durations["duration_p50_s"]["value"] == 400.0  # verdict runs of the week: 300, 400, 500
    assert durations["duration_p90_s"]["value"] == pytest.approx(480.0)
    assert durations["duration_p50_s"]["previous"] == 150.0  # 100, 200
    assert durations["duration_p50_s"]["change"] == 250.0
    assert durations["queue_run_p50_s"]["value"] == 35.0  # every attempt: 25, 30, 40, 50
    assert [(w["workflow"], w["duration_p50_s"], w["previous_p50_s"]) for w in durations["slowest_workflows"]] == [
        ("Docs", 500.0, None),
        ("CI", 350.0, 150.0),
    ]
    assert [(j["job"], j["duration_p50_s"], j["previous_p50_s"]) for j in durations["slowest_jobs"]] == [
        ("build", 450.0, None),
        ("test", 70.0, 150.0),  # 80 (attempt 1), 60, 70
        ("lint", 30.0, None),
    ]

    recovery = s["recovery"]
    assert recovery["mttr_default_branches_s"]["value"] == 5 * 86400.0  # red T - 4 d -> green T + 1 d
    assert recovery["mttr_default_branches_s"]["previous"] is None
    assert recovery["red_branches"]["series"] == series(0, 1, 1, before=0)
    assert [(r["branch"], r["age_s"]) for r in recovery["red_now"]] == [("main", 5 * 86400.0)]

    flaky = s["flaky_jobs"]
    assert flaky["flaky_jobs"]["value"] == 1  # test failed and passed on s4
    assert flaky["flaky_rate"]["value"] == pytest.approx(1 / 4)  # (test, s4), (lint, s4), (test, s5), (build, s6)
    assert flaky["rerun_minutes"]["value"] == pytest.approx(250 / 60)
    assert flaky["rerun_minutes"]["previous"] == 0.0
    assert [j["job"] for j in flaky["jobs"]] == ["test"]

    triage = s["failure_triage"]
    assert triage["analysed_failures"]["series"] == series(1, 4, before=0)
    assert triage["top_categories"] == [
        {"category": "test_failure", "failures": 2, "previous": 0},
        {"category": "config", "failures": 1, "previous": 0},
        {"category": "infrastructure", "failures": 1, "previous": 1},
    ]
    assert [
        (f["fingerprint"], f["occurrences_in_period"], f["occurrences_until_end"])
        for f in triage["recurring_fingerprints"]
    ] == [("fp1", 2, 2), ("fp2", 1, 2)]  # fp3: once, new

    assert s["dora"] == {"no_data": "no deployment to a production environment in the period"}

    prs = s["pull_requests_issues"]
    assert prs["prs_merged"]["value"] == 5.0
    assert prs["prs_merged"]["previous"] == 1.0
    assert prs["prs_merged"]["change"] == 4.0
    assert prs["time_to_merge_p50_s"]["value"] == 200.0
    assert prs["issues_opened"]["value"] == 4.0
    assert prs["issues_closed"]["value"] is None
    assert prs["projects"] == [
        {
            "project": "api",
            "prs_merged": {"value": 5.0, "previous": 1.0},
            "issues_opened": {"value": 4.0, "previous": 0.0},
        }
    ]

    health = s["health"]
    assert health["scores"]["mean_score"]["value"] == 70.0
    assert health["scores"]["mean_score"]["previous"] == 67.5
    assert health["scores"]["mean_score"]["change"] == 2.5
    assert [(m["project"], m["change"]) for m in health["scores"]["movers"]] == [("api", 10.0), ("web", -5.0)]
    assert health["sonarqube"]["quality_gates_failing"]["series"][-2:] == [0, 1]
    assert health["sonarqube"]["projects"][0]["quality_gate"] == {"value": 0.0, "previous": 1.0, "status": "ERROR"}
    assert health["prometheus"]["availability"]["value"] == 99.25
    assert health["prometheus"]["availability"]["previous"] == 99.9

    alerts = s["alerts"]
    assert alerts["alerts_fired"]["series"] == series(1, 1, before=0)
    assert alerts["alerts"] == [
        {
            "source": "ci_pipeline_analytics",
            "rule_id": "low-success",
            "scope_key": "github:acme/api:CI:main",
            "severity": "warning",
            "kind": "success_rate",
            "started_at": at(2).isoformat(),
            "resolved_at": None,  # resolved after the week
            "state": "firing",
            "new": True,
        }
    ]


def test_ci_figures_equal_window_summary(store: ResultsStore) -> None:
    got = rf.report_figures(store, start=T, end=T + WEEK)["sections"]["ci_runs"]
    summary = analytics.window_summary(store, start=T, end=T + WEEK)["total"]
    assert got["runs"]["value"] == summary["current"]["runs"]
    assert got["runs"]["previous"] == summary["previous"]["runs"]
    assert got["success_rate"]["value"] == summary["current"]["success_rate"]
    assert got["failures_by_branch"] == summary["current"]["failures_by_branch"]


def test_older_periods_of_the_series_equal_window_summary_of_that_week(store: ResultsStore) -> None:
    """The sparkline values of the periods before the previous one are those figures too (definitions
    §3), read in the same pass: two weeks back holds run 1."""
    s = rf.report_figures(store, start=T, end=T + WEEK)["sections"]
    for position, start in ((5, T - 2 * WEEK), (4, T - 3 * WEEK)):
        week = analytics.window_summary(store, start=start, end=start + WEEK)["total"]["current"]
        assert s["ci_runs"]["runs"]["series"][position] == week["runs"]
        assert s["ci_runs"]["success_rate"]["series"][position] == week["success_rate"]
        assert s["durations"]["duration_p50_s"]["series"][position] == week["duration_p50_s"]
        assert s["durations"]["queue_run_p90_s"]["series"][position] == week["queue_run_p90_s"]
        assert s["flaky_jobs"]["rerun_minutes"]["series"][position] == week["rerun_minutes"]
    assert s["ci_runs"]["runs"]["series"][4:6] == [0, 1]
    assert s["durations"]["duration_p50_s"]["series"][5] == 50.0


def test_scope_filters(store: ResultsStore) -> None:
    got = rf.report_figures(store, start=T, end=T + WEEK, repos=["other/repo"], projects=["web"])
    s = got["sections"]
    assert s["ci_runs"] == {"no_data": "no CI run finished in the period"}
    assert "no_data" in s["failure_triage"]
    assert [p["project"] for p in s["health"]["scores"]["projects"]] == ["web"]
    assert s["health"]["sonarqube"] == {"no_data": "no SonarQube figure was collected for the period"}
    assert s["alerts"] == {"no_data": "no alert was firing in the period"}
    assert got["scope"] == {"projects": ["web"], "repos": ["other/repo"]}


def test_empty_period_has_no_data_everywhere(store: ResultsStore) -> None:
    start = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
    got = rf.report_figures(store, start=start, end=start + WEEK)
    assert got["has_data"] is False
    assert all(set(section) == {"no_data"} for section in got["sections"].values())


def test_deterministic(store: ResultsStore) -> None:
    first = rf.report_figures(store, start=T, end=T + WEEK)
    second = rf.report_figures(store, start=T, end=T + WEEK)
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_month_report_uses_calendar_months(store: ResultsStore) -> None:
    start, end = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    got = rf.report_figures(store, start=start, end=end, period="month", periods=3)
    assert got["period"]["label"] == "2026-11"
    assert got["periods"] == [
        {"start": "2026-09-01T00:00:00+00:00", "end": "2026-10-01T00:00:00+00:00"},
        {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00"},
        {"start": "2026-11-01T00:00:00+00:00", "end": "2026-12-01T00:00:00+00:00"},
    ]
    # every run but run 1 (2026-11-06) finished in November; run 1 too: all 6 runs
    assert got["sections"]["ci_runs"]["runs"]["series"] == [0, 0, 6]


# ---- period bounds (no database) -------------------------------------------------------------------


def test_month_bounds_across_years_and_lengths() -> None:
    start, end = dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    bounds = rf.period_bounds(start, end, "month", 4)
    assert [(s.date().isoformat(), e.date().isoformat()) for s, e in bounds] == [
        ("2025-12-01", "2026-01-01"),
        ("2026-01-01", "2026-02-01"),
        ("2026-02-01", "2026-03-01"),
        ("2026-03-01", "2026-04-01"),
    ]


def test_bounds_in_a_local_time_zone_follow_the_wall_clock() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    start, end = dt.datetime(2026, 3, 30, tzinfo=berlin), dt.datetime(2026, 4, 6, tzinfo=berlin)
    (prev_start, prev_end), (cur_start, cur_end) = rf.period_bounds(start, end, "week", 2)
    assert prev_start == dt.datetime(2026, 3, 22, 23, tzinfo=dt.UTC)  # CET, before the DST change
    assert prev_end == cur_start == dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC)  # CEST
    assert cur_end == dt.datetime(2026, 4, 5, 22, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("start", "end", "period", "message"),
    [
        (T, T + dt.timedelta(days=6), "week", "end = start \\+ 7 days"),
        (dt.datetime(2026, 11, 2, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, tzinfo=dt.UTC), "month", "first of a month"),
        (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 30, tzinfo=dt.UTC), "month", "next month"),
        (T, T + WEEK, "day", "period must be one of"),
        (T.replace(tzinfo=None), T + WEEK, "week", "timezone-aware"),
    ],
)
def test_bad_bounds_are_refused(start: dt.datetime, end: dt.datetime, period: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rf.period_bounds(start, end, period)


def test_headline_change() -> None:
    assert rf.headline([None, 1.0, 3.0], "s", rf.LOWER) == {
        "value": 3.0,
        "previous": 1.0,
        "change": 2.0,
        "series": [None, 1.0, 3.0],
        "unit": "s",
        "direction": "lower_is_better",
    }
    assert rf.headline([1.0, None], "s", None)["change"] is None
