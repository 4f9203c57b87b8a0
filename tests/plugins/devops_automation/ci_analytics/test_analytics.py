"""Figures read from a real results store (SQLite and PostgreSQL): window summary with filters, groups
and the previous window, and the ``ci_daily`` rows (a recompute rewrites the same rows)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from devops_automation.ci_analytics import analytics as an
from devops_automation.ci_analytics import figures as f
from devops_automation.store import ResultsStore, schema

T = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # the window is the week [T, T + 7 d); the previous one before it
WEEK = dt.timedelta(days=7)
H = 3600.0
COLLECTED = T + dt.timedelta(days=30)


def at(days: float = 0.0, hours: float = 0.0) -> dt.datetime:
    return T + dt.timedelta(days=days, hours=hours)


def run_row(
    run_id: str,
    status: str,
    finished: dt.datetime | None,
    *,
    attempt: int = 1,
    provider: str = "github",
    repo: str = "acme/api",
    workflow: str = "CI",
    branch: str = "main",
    sha: str = "s0",
    actor: str = "alice",
    duration: float | None = None,
    queue: float | None = None,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "run_number": int(run_id),
        "name": workflow,
        "workflow": workflow,
        "branch": branch,
        "sha": sha,
        "actor": actor,
        "author": actor,
        "event": "push",
        "status": status,
        "status_raw": status,
        "created_at": T - dt.timedelta(days=40),
        "started_at": finished - dt.timedelta(seconds=duration or 0) if finished else None,
        "finished_at": finished,
        "updated_at": finished,
        "duration_s": duration,
        "queue_s": queue,
        "url": f"https://ci.example/{repo}/{run_id}/{attempt}",
        "collected_at": COLLECTED,
    }


def job_row(
    run_id: str,
    job_id: str,
    name: str,
    status: str,
    *,
    attempt: int = 1,
    provider: str = "github",
    repo: str = "acme/api",
    queue: float | None = None,
    duration: float | None = 10.0,
    retried: bool = False,
    allow_failure: bool = False,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "job_id": job_id,
        "name": name,
        "status": status,
        "status_raw": status,
        "duration_s": duration,
        "queue_s": queue,
        "retried": retried,
        "allow_failure": allow_failure,
    }


def deployment_row(deployment_id: str, status: str, finished: dt.datetime, sha: str, environment: str = "production"):
    return {
        "provider": "github",
        "repo": "acme/api",
        "deployment_id": deployment_id,
        "environment": environment,
        "sha": sha,
        "status": status,
        "status_raw": status,
        "created_at": finished - dt.timedelta(minutes=5),
        "finished_at": finished,
        "collected_at": COLLECTED,
    }


GL = {"provider": "gitlab", "repo": "grp/app"}

RUNS = [
    # history and previous week (acme/api, CI)
    run_row("100", "success", at(-10), duration=100, queue=10, sha="s100"),
    run_row("101", "failure", at(-3), duration=200, queue=20, sha="s101", actor="bob"),  # main turns red
    run_row("107", "success", at(-2), duration=60, queue=1, branch="feat", actor="bob", sha="s107"),
    # run 102: attempt 1 before the previous week, re-run green inside the window (ends the red streak)
    run_row("102", "failure", at(-8), attempt=1, duration=300, queue=30, sha="s102", actor="carol"),
    run_row("102", "success", at(hours=1), attempt=2, duration=120, queue=5, sha="s102", actor="dave"),
    # the window
    run_row("103", "failure", at(hours=2), duration=400, queue=40, sha="s103"),  # main red again
    run_row("104", "cancelled", at(hours=3), duration=10, queue=50, sha="s104"),
    run_row("105", "success", at(hours=4), duration=500, queue=60, branch="feat", actor="bob", sha="s105"),
    # run 106: green inside the window, re-run red after it: belongs to the next week
    run_row("106", "success", at(5), attempt=1, duration=70, queue=2, sha="s106"),
    run_row("106", "failure", at(8), attempt=2, duration=80, queue=3, sha="s106", actor="bob"),
    run_row("108", "running", None, sha="s108"),  # still running: nowhere
    # GitLab
    run_row("500", "success", at(1), workflow="push", duration=1000, queue=100, sha="g1", actor="erin", **GL),
    run_row("501", "failure", at(2), workflow="push", duration=50, queue=7, sha="g2", actor="erin", **GL),
]
JOBS = [
    job_row("101", "1011", "test", "failure", queue=9),
    job_row("102", "1021", "test", "failure", attempt=1, queue=1),
    job_row("102", "1022", "test", "success", attempt=2, queue=2),
    job_row("103", "1031", "test", "failure", queue=3),
    job_row("103", "1032", "lint", "success", queue=4),
    job_row("500", "5001", "rspec", "failure", queue=3, duration=120, retried=True, **GL),
    job_row("500", "5002", "rspec", "success", queue=4, **GL),
    job_row("500", "5003", "build", "success", queue=5, **GL),
    job_row("501", "5011", "build", "failure", queue=6, **GL),
    job_row("501", "5012", "docs", "failure", queue=7, allow_failure=True, **GL),
]
DEPLOYMENTS = [
    deployment_row("1", "success", at(-10), "s100"),
    deployment_row("2", "success", at(1), "s102"),
    deployment_row("3", "failure", at(2), "s103"),  # deployment 2's change failed
    deployment_row("4", "success", at(3), "s100"),  # recovery after 24 h, and a rollback to s100
    deployment_row("5", "success", at(4), "s105", environment="staging"),  # not production-like
]


def seed(store: ResultsStore) -> None:
    with store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), RUNS)
        conn.execute(sa.insert(schema.ci_jobs), JOBS)
        conn.execute(sa.insert(schema.ci_deployments), DEPLOYMENTS)
        events = {}
        for project_id, pipeline_id in (("7", "500"), ("grp/app", "500"), ("7", "501")):  # 500 told twice
            events[(project_id, pipeline_id)] = conn.execute(
                sa.insert(schema.failure_events)
                .values(
                    provider="gitlab",
                    project_id=project_id,
                    project_path="grp/app",
                    pipeline_id=pipeline_id,
                    source="webhook",
                    received_at=at(1),
                )
                .returning(schema.failure_events.c.id)
            ).scalar_one()
        analyses = [  # job 5001 analysed twice: the latest analysis counts
            (events[("7", "500")], "5001", "test_failure", at(1)),
            (events[("grp/app", "500")], "5001", "infrastructure", at(1, 1)),
            (events[("7", "501")], "5011", "compile_error", at(2)),
        ]
        conn.execute(
            sa.insert(schema.failure_analyses),
            [
                {"event_id": event, "job_id": job_id, "category": category, "analyser": "heuristic", "created_at": when}
                for event, job_id, category, when in analyses
            ],
        )


@pytest.fixture
def store(results_store: ResultsStore) -> ResultsStore:
    seed(results_store)
    return results_store


# ---- window summary --------------------------------------------------------------------------------


def test_window_summary_total_against_hand_computed_figures(store: ResultsStore) -> None:
    summary = an.window_summary(store, start=T, end=T + WEEK)
    assert summary["window"] == {"start": T.isoformat(), "end": (T + WEEK).isoformat()}
    assert summary["previous_window"] == {"start": (T - WEEK).isoformat(), "end": T.isoformat()}
    assert summary["groups"] == []
    now = summary["total"]["current"]
    # runs 102 (final attempt 2), 103, 104, 105, 500, 501; 106 was re-run after the window, 108 runs on
    assert now["runs"] == 6
    assert now["runs_by_status"] == {
        "success": 3,
        "failure": 2,
        "timed_out": 0,
        "cancelled": 1,
        "skipped": 0,
        "other": 0,
    }
    assert now["success_rate"] == pytest.approx(3 / 5)
    assert now["first_attempt_success_rate"] == pytest.approx(2 / 5)  # 102 was red on its first attempt
    assert (now["attempts"], now["failed_attempts"]) == (7, 3)
    assert now["attempt_failure_rate"] == pytest.approx(3 / 7)
    # durations 50, 120, 400, 500, 1000
    assert (now["duration_p50_s"], now["duration_p90_s"], now["duration_max_s"]) == (400.0, 800.0, 1000.0)
    # attempts queued 5, 7, 30, 40, 50, 60, 100; jobs 1, 2, 3, 3, 4, 4, 5, 6, 7
    assert (now["queue_run_p50_s"], now["queue_run_p90_s"]) == (40.0, pytest.approx(76.0))
    assert (now["queue_job_p50_s"], now["queue_job_p90_s"]) == (4.0, pytest.approx(6.2))
    assert now["rerun_minutes"] == pytest.approx(5 + 2)  # attempt 1 of 102 (300 s) + retried job 5001 (120 s)
    assert now["rerun_attempts"] == 2
    assert now["failures_by_actor"] == [{"actor": "alice", "failures": 1}, {"actor": "erin", "failures": 1}]
    assert now["failures_by_job"] == [
        {"provider": "github", "repo": "acme/api", "workflow": "CI", "job": "test", "failures": 2},
        {"provider": "gitlab", "repo": "grp/app", "workflow": "push", "job": "build", "failures": 1},
        {"provider": "gitlab", "repo": "grp/app", "workflow": "push", "job": "rspec", "failures": 1},
    ]
    # the latest analysis of job 5001 wins; GitHub jobs are never analysed; allowed failures are not failures
    assert now["failures_by_category"] == [
        {"category": "unanalysed", "failures": 2},
        {"category": "compile_error", "failures": 1},
        {"category": "infrastructure", "failures": 1},
    ]
    assert now["mttr_s"] == 73 * H  # main red from run 101 (T - 3 d) to run 102's green re-run (T + 1 h)
    assert [(s["repo"], s["branch"], s["first_run_id"], s["age_s"]) for s in now["open_streaks"]] == [
        ("acme/api", "main", "103", 166 * H),
        ("grp/app", "main", "501", 120 * H),
    ]
    assert all(s["start_known"] for s in now["open_streaks"] + now["streaks_ended"])
    assert [(j["repo"], j["job"], j["flaky_on"], j["rate"]) for j in now["flaky_jobs"]] == [
        ("grp/app", "rspec", ["g1"], 1.0),
        ("acme/api", "test", ["s102"], 0.5),
    ]
    # (job, SHA) pairs: test s102, test s103, lint s103, rspec g1, build g1, build g2, docs g2 (allowed to fail,
    # but it ran): 2 of 7 flaky
    assert now["flaky_rate"] == pytest.approx(2 / 7)
    dora = now["dora"]
    assert (dora["deployments"], dora["deployment_days"], dora["failed_deployments"]) == (2, 2, 1)
    assert dora["deployments_per_day"] == pytest.approx(2 / 7)
    assert (dora["change_failure_rate"], dora["rollbacks"], dora["recovery_time_p50_s"]) == (0.5, 1, 24 * H)
    assert dora["lead_time_p50_s"] is None  # no commit times given
    assert dora["bands"] == {
        "deployment_frequency": "high",
        "lead_time": None,
        "change_failure_rate": "low",
        "recovery_time": "medium",
    }


def test_window_summary_previous_window_beside_it(store: ResultsStore) -> None:
    before = an.window_summary(store, start=T, end=T + WEEK)["total"]["previous"]
    assert before["runs"] == 2  # 101 and 107; 102's first attempt is not its final one
    assert before["success_rate"] == 0.5
    assert before["mttr_s"] is None
    assert [(s["first_run_id"], s["age_s"], s["start_known"]) for s in before["open_streaks"]] == [
        ("101", 72 * H, True)
    ]
    assert before["dora"]["deployments"] == 0
    assert before["dora"]["bands"]["deployment_frequency"] == "low"
    assert an.window_summary(store, start=T, end=T + WEEK, with_previous=False)["total"]["previous"] is None


def test_a_run_rerun_after_the_window_counts_in_the_next_one(store: ResultsStore) -> None:
    nxt = an.window_summary(store, start=T + WEEK, end=T + 2 * WEEK, with_previous=False)["total"]["current"]
    assert nxt["runs"] == 1  # run 106, final attempt 2 (its attempt 1 finished before this window: fetched)
    assert nxt["success_rate"] == 0.0
    assert nxt["first_attempt_success_rate"] == 1.0
    assert nxt["rerun_minutes"] == pytest.approx(70 / 60)


@pytest.mark.parametrize(
    ("filters", "runs", "previous_runs", "success_rate"),
    [
        ({"repos": ["grp/app"]}, 2, 0, 0.5),
        ({"repos": "grp/app"}, 2, 0, 0.5),
        ({"provider": "gitlab"}, 2, 0, 0.5),
        ({"workflows": ["push"]}, 2, 0, 0.5),
        ({"branches": ["feat"]}, 1, 1, 1.0),
        ({"actors": ["alice"]}, 2, 0, 0.0),  # 103 (failure) and 104 (cancelled): final attempts started by alice
        ({"actors": ["dave"]}, 1, 0, 1.0),  # 102's green re-run was started by dave
        ({"repos": ["acme/api"], "branches": ["main"]}, 3, 1, 0.5),
        ({"repos": ["nobody/nothing"]}, 0, 0, None),
    ],
)
def test_window_summary_filters(
    store: ResultsStore, filters: dict[str, Any], runs: int, previous_runs: int, success_rate: float | None
) -> None:
    total = an.window_summary(store, start=T, end=T + WEEK, **filters)["total"]
    assert total["current"]["runs"] == runs
    assert total["previous"]["runs"] == previous_runs
    assert total["current"]["success_rate"] == success_rate


def test_filters_limit_deployments_by_repository_only(store: ResultsStore) -> None:
    assert an.window_summary(store, start=T, end=T + WEEK, repos=["grp/app"])["total"]["current"]["dora"] is None
    by_branch = an.window_summary(store, start=T, end=T + WEEK, branches=["feat"])["total"]["current"]
    assert by_branch["dora"]["deployments"] == 2


def test_window_summary_grouped_by_repo(store: ResultsStore) -> None:
    summary = an.window_summary(store, start=T, end=T + WEEK, group_by="repo")
    assert summary["group_by"] == ["provider", "repo"]
    groups = {(g["key"]["provider"], g["key"]["repo"]): g for g in summary["groups"]}
    assert list(groups) == [("github", "acme/api"), ("gitlab", "grp/app")]
    acme, gl = groups[("github", "acme/api")], groups[("gitlab", "grp/app")]
    assert (acme["current"]["runs"], acme["previous"]["runs"]) == (4, 2)
    assert acme["current"]["success_rate"] == pytest.approx(2 / 3)
    assert acme["current"]["dora"]["deployments"] == 2
    assert gl["current"]["dora"] is None
    assert gl["current"]["failures_by_category"][0] == {"category": "compile_error", "failures": 1}
    assert summary["total"]["current"]["runs"] == 6  # the total is still there
    assert summary["total"]["current"]["flaky_rate"] == pytest.approx(2 / 7)


def test_window_summary_grouped_by_repo_workflow_branch(store: ResultsStore) -> None:
    summary = an.window_summary(store, start=T, end=T + WEEK, group_by=("repo", "workflow", "branch"))
    assert summary["group_by"] == ["provider", "repo", "workflow", "branch"]
    keys = [tuple(g["key"].values()) for g in summary["groups"]]
    assert keys == [
        ("github", "acme/api", "CI", "feat"),
        ("github", "acme/api", "CI", "main"),
        ("gitlab", "grp/app", "push", "main"),
    ]
    main = summary["groups"][1]
    assert (main["current"]["runs"], main["current"]["mttr_s"]) == (3, 73 * H)
    assert main["current"]["dora"] is None  # deployments have no branch
    feat = summary["groups"][0]
    assert (feat["current"]["runs"], feat["previous"]["runs"], feat["current"]["open_streaks"]) == (1, 1, [])
    assert summary["total"]["current"]["flaky_rate"] == pytest.approx(2 / 7)


def test_window_summary_grouped_by_branch_merges_repositories(store: ResultsStore) -> None:
    summary = an.window_summary(store, start=T, end=T + WEEK, group_by="branch")
    runs = {g["key"]["branch"]: g["current"]["runs"] for g in summary["groups"]}
    assert runs == {"feat": 1, "main": 5}


def test_window_summary_is_json_serialisable(store: ResultsStore) -> None:
    import json

    summary = an.window_summary(store, start=T, end=T + WEEK, group_by="repo")
    assert json.loads(json.dumps(summary)) == summary


def test_window_summary_refuses_bad_arguments(store: ResultsStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        an.window_summary(store, start=dt.datetime(2026, 11, 16), end=T + WEEK)
    with pytest.raises(ValueError, match="empty window"):
        an.window_summary(store, start=T, end=T)
    with pytest.raises(ValueError, match="group_by 'team'"):
        an.window_summary(store, start=T, end=T + WEEK, group_by="team")


def test_history_bounds_the_streak_lookup(store: ResultsStore) -> None:
    """A streak whose first failure is the first run seen in a history too short to show its start is
    listed, marked, and left out of MTTR."""
    short = an.window_summary(store, start=T, end=T + WEEK, history=dt.timedelta(days=4), with_previous=False)
    now = short["total"]["current"]
    # history [T - 4 d, T): main's first run seen is run 101's failure; the green run 100 is older
    assert [(s["first_run_id"], s["length_s"], s["start_known"]) for s in now["streaks_ended"]] == [
        ("101", 73 * H, False)
    ]
    assert now["mttr_s"] is None
    full = an.window_summary(store, start=T, end=T + WEEK, with_previous=False)["total"]["current"]
    assert [(s["first_run_id"], s["start_known"]) for s in full["streaks_ended"]] == [("101", True)]
    assert full["mttr_s"] == 73 * H


def test_history_run_cancelled_after_a_failed_attempt_is_not_red(results_store: ResultsStore) -> None:
    """A history run whose attempt 1 failed and whose attempt 2 was cancelled has no verdict (its final
    attempt decides): the branch is not red at the window's start. Before, only attempts with a verdict
    were read from the history, so attempt 1 was taken for the final one and a streak was reported."""
    rows = [
        run_row("1", "success", at(-5), sha="a"),
        run_row("2", "failure", at(-4), attempt=1, sha="b"),
        run_row("2", "cancelled", at(-3), attempt=2, sha="b"),
        run_row("3", "skipped", at(1), workflow="Docs", sha="c"),
    ]
    with results_store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), rows)
    now = an.window_summary(results_store, start=T, end=T + WEEK, with_previous=False)["total"]["current"]
    assert now["open_streaks"] == []
    # the same history with attempt 2 failed too is red from attempt 1's run on
    with results_store.begin() as conn:
        r = schema.ci_runs
        conn.execute(sa.update(r).where(r.c.run_id == "2", r.c.attempt == 2).values(status="failure"))
    now = an.window_summary(results_store, start=T, end=T + WEEK, with_previous=False)["total"]["current"]
    assert [(s["first_run_id"], s["branch"]) for s in now["open_streaks"]] == [("2", "main")]


def test_load_rows_reads_window_history_jobs_and_categories(store: ResultsStore) -> None:
    rows = an.load_rows(store, start=T, end=T + WEEK, history_start=T - WEEK)
    window = sorted((r["run_id"], r["attempt"]) for r in rows.runs if r["finished_at"] >= T - dt.timedelta(days=8))
    # 102's attempt 1 (T - 8 d) is fetched for its run; 106 is superseded; 101 and 107 are history
    assert window == [
        ("101", 1),
        ("102", 1),
        ("102", 2),
        ("103", 1),
        ("104", 1),
        ("105", 1),
        ("107", 1),
        ("500", 1),
        ("501", 1),
    ]
    assert rows.categories == {("gitlab", "5001"): "infrastructure", ("gitlab", "5011"): "compile_error"}
    job_names = sorted(record[2] for record in rows.jobs)
    assert job_names == ["build", "build", "docs", "lint", "rspec", "rspec", "test", "test", "test"]
    assert sorted(d["deployment_id"] for d in rows.deployments) == ["2", "3", "4", "5"]  # 1 is before the history
    assert rows.index().runs[("github", "acme/api", "102")].first["status"] == "failure"


# ---- ci_daily --------------------------------------------------------------------------------------

DAY1, DAY2 = T.date(), (T + dt.timedelta(days=1)).date()


def daily(store: ResultsStore) -> list[dict[str, Any]]:
    t = schema.ci_daily
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def test_daily_rows_per_branch_and_per_repository(store: ResultsStore) -> None:
    rows = an.daily_rows(store, DAY1, computed_at=COLLECTED)
    assert [(r["provider"], r["repo"], r["workflow"], r["branch"], r["runs"]) for r in rows] == [
        ("github", "acme/api", "*", "*", 4),
        ("github", "acme/api", "CI", "feat", 1),
        ("github", "acme/api", "CI", "main", 3),
    ]
    main = rows[2]["figures"]
    assert main["success_rate"] == 0.5
    assert main["mttr_s"] == 73 * H
    assert [s["first_run_id"] for s in main["open_streaks"]] == ["103"]
    assert rows[0]["figures"]["dora"]["deployments"] == 0
    day2 = an.daily_rows(store, DAY2, computed_at=COLLECTED)
    assert [(r["repo"], r["workflow"], r["branch"], r["runs"]) for r in day2] == [
        ("acme/api", "*", "*", 0),  # no runs, but a deployment that day
        ("grp/app", "*", "*", 1),
        ("grp/app", "push", "main", 1),
    ]
    dora = day2[0]["figures"]["dora"]
    # judged with what was known at the day's end: the failed deployment of the next day does not count yet
    assert (dora["deployments"], dora["change_failure_rate"]) == (1, 0.0)


def test_store_daily_twice_gives_the_same_rows(store: ResultsStore) -> None:
    assert an.store_daily(store, [DAY1, DAY2], COLLECTED) == 6
    first = daily(store)
    assert len(first) == 6
    assert an.store_daily(store, [DAY2, DAY1, DAY1], COLLECTED) == 6
    assert daily(store) == first  # same ids, same values
    main = next(r for r in first if r["day"] == DAY1 and r["branch"] == "main")
    assert main["figures"]["failures_by_job"] == [
        {"provider": "github", "repo": "acme/api", "workflow": "CI", "job": "test", "failures": 2}
    ]
    assert main["computed_at"] == COLLECTED


def test_store_daily_recompute_rewrites_a_day_that_changed(store: ResultsStore) -> None:
    an.store_daily(store, [DAY1], COLLECTED)
    # run 105 (the only run of feat on day 1) is re-run and completes on day 3: it leaves day 1
    rerun = run_row("105", "success", at(2, 1), attempt=2, duration=30, queue=1, branch="feat", actor="bob")
    with store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), [rerun])
    later = COLLECTED + dt.timedelta(hours=1)
    days = f.days_touched([rerun, RUNS[7]])
    assert days == {DAY1, (T + dt.timedelta(days=2)).date()}
    an.store_daily(store, days, later)
    rows = {(r["day"], r["workflow"], r["branch"]): r for r in daily(store)}
    assert (DAY1, "CI", "feat") not in rows  # the stale row is gone
    assert rows[(DAY1, "*", "*")]["runs"] == 3
    assert rows[(DAY1, "*", "*")]["computed_at"] == later
    day3 = rows[((T + dt.timedelta(days=2)).date(), "CI", "feat")]
    assert (day3["runs"], day3["figures"]["first_attempt_success_rate"]) == (1, 1.0)


def test_store_daily_for_one_repository_leaves_the_others(store: ResultsStore) -> None:
    an.store_daily(store, [DAY2], COLLECTED)
    an.store_daily(store, [DAY2], COLLECTED + dt.timedelta(hours=1), repos=["grp/app"])
    rows = daily(store)
    assert len(rows) == 3
    assert {r["repo"]: r["computed_at"] for r in rows if r["workflow"] == "*"} == {
        "acme/api": COLLECTED,
        "grp/app": COLLECTED + dt.timedelta(hours=1),
    }


# ---- percentiles agree with PostgreSQL ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[10, 20, 30, 40], [5, 5, 5, 10], [7], [1.5, 100, 3.25, 3.25, 80, 0, 41], list(range(1, 101))],
)
def test_percentile_matches_postgresql_percentile_cont(pg_url: str, values: list[float]) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            for q in (0.0, 0.25, 0.5, 0.9, 1.0):
                rows = ", ".join(f"({float(v)})" for v in values)
                expected = conn.execute(
                    sa.text(f"SELECT percentile_cont(:q) WITHIN GROUP (ORDER BY v) FROM (VALUES {rows}) AS t(v)"),
                    {"q": q},
                ).scalar_one()
                assert f.percentile(values, q) == pytest.approx(expected, abs=1e-9), (values, q)
    finally:
        engine.dispose()


# ---- speed without changing a figure (benchmarks/analytics.py) -------------------------------------


def random_history(seed: int) -> dict[str, list[dict[str, Any]]]:
    """A seeded history with everything the loader has to get right, all of it after the history start
    of the week ``[T, T + 7 d)`` (T − 35 d): re-runs of failed attempts hours to days later (attempt 1
    before the previous week, attempt 2 inside it; attempt 2 after the window: the run moves on), runs
    still running, GitLab retried and allowed-to-fail jobs, finish times shared by several runs, the
    same run ids in different repositories, unknown statuses, missing workflow/branch/actor, durations
    in quarter seconds (exact sums in any order), deployments, and failure analyses (a job analysed
    twice, an event without a project path, one of another project)."""
    import random

    rng = random.Random(seed)
    repos = [("github", "acme/api"), ("github", "acme/web"), ("gitlab", "grp/app")]
    runs: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    analyses: list[tuple[str, str | None, str, dt.datetime]] = []  # job id, project path, category, at
    counters = dict.fromkeys(repos, 100)
    finishes: list[dt.datetime] = []
    job_id = 10_000
    for _ in range(240):
        provider, repo = rng.choice(repos)
        counters[(provider, repo)] += 1
        run_id = str(counters[(provider, repo)])  # the same ids in every repository
        created = T + dt.timedelta(minutes=rng.randrange(-34 * 24 * 60, 9 * 24 * 60))
        common = {
            "provider": provider,
            "repo": repo,
            "run_id": run_id,
            "run_number": int(run_id),
            "workflow": rng.choice(["CI", "CI", "Deploy", None]),
            "branch": rng.choice(["main", "main", "feat", None]),
            "sha": rng.choice(["s1", "s2", "s3", "s4", None]),
            "event": "push",
            "created_at": created,
            "collected_at": COLLECTED,
        }
        at_time = created
        attempts = rng.choice([1, 1, 1, 2, 3]) if provider == "github" else 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            if last and rng.random() < 0.06:
                status = "running"
            elif not last:
                status = rng.choice(["failure", "timed_out"])  # only those are re-run
            elif attempts > 1:  # (the loader reads only verdicts before the previous window: a re-run has one)
                status = rng.choice(["success", "success", "failure", "timed_out"])
            else:
                status = rng.choice(["success"] * 5 + ["failure"] * 3 + ["timed_out", "cancelled", "skipped", "odd"])
            duration = rng.choice([None, rng.randrange(4, 4000) / 4])
            if attempt > 1:
                at_time += dt.timedelta(minutes=rng.choice([20, 300, 2 * 24 * 60, 5 * 24 * 60]))
            finished = None
            if status != "running":
                finished = at_time + dt.timedelta(seconds=rng.randrange(60, 3600))
                later = [x for x in finishes if at_time < x < finished + dt.timedelta(days=1)]
                if later and rng.random() < 0.3:
                    finished = rng.choice(later)  # at the same time as another run (never before it started)
                finishes.append(finished)
            runs.append(
                {
                    **common,
                    "attempt": attempt,
                    "name": common["workflow"],
                    "actor": rng.choice(["alice", "bob", "carol", None]),
                    "author": "alice",
                    "status": status,
                    "status_raw": status,
                    "started_at": at_time,
                    "finished_at": finished,
                    "updated_at": finished or at_time,
                    "duration_s": duration,
                    "queue_s": rng.choice([None, rng.randrange(0, 400) / 4]),
                    "url": f"https://ci.example/{repo}/{run_id}/{attempt}",
                }
            )
            if finished is not None:
                at_time = finished
            for name in rng.sample(["build", "test", "lint"], rng.randrange(0, 4)):
                tries = [True, False] if provider == "gitlab" and rng.random() < 0.2 else [False]
                for retried in tries:
                    job_id += 1
                    job_status = "failure" if retried else rng.choice(["success"] * 3 + ["failure", "skipped"])
                    jobs.append(
                        {
                            "provider": provider,
                            "repo": repo,
                            "run_id": run_id,
                            "attempt": attempt,
                            "job_id": str(job_id),
                            "name": name,
                            "status": "running" if status == "running" else job_status,
                            "status_raw": job_status,
                            "duration_s": rng.choice([None, rng.randrange(4, 800) / 4]),
                            "queue_s": rng.choice([None, rng.randrange(0, 200) / 4]),
                            "retried": retried,
                            "allow_failure": name == "lint" and rng.random() < 0.5,
                        }
                    )
                    if provider == "gitlab" and job_status == "failure" and rng.random() < 0.5:
                        path = rng.choice(["grp/app", "grp/app", None, "grp/other"])
                        when = (finished or at_time) + dt.timedelta(minutes=5)
                        analyses.append((str(job_id), path, rng.choice(["test_failure", "infrastructure"]), when))
                        if rng.random() < 0.3:  # analysed again later: the latest counts
                            analyses.append((str(job_id), "grp/app", "dependency", when + dt.timedelta(hours=1)))
    deployments = []
    for n in range(40):
        repo = rng.choice(["acme/api", "acme/web"])
        finished = T + dt.timedelta(hours=rng.randrange(-33 * 24, 8 * 24))
        deployments.append(
            {
                **deployment_row(str(900 + n), rng.choice(["success", "success", "failure"]), finished, f"d{n % 7}"),
                "repo": repo,
                "environment": rng.choice(["production", "staging"]),
                "commits": [{"sha": f"c{n}", "authored_at": (finished - dt.timedelta(hours=5)).isoformat()}],
            }
        )
    return {"runs": runs, "jobs": jobs, "deployments": deployments, "analyses": analyses}


def store_history(store: ResultsStore, history: dict[str, list[Any]]) -> None:
    with store.begin() as conn:
        conn.execute(sa.insert(schema.ci_runs), history["runs"])
        conn.execute(sa.insert(schema.ci_jobs), history["jobs"])
        conn.execute(sa.insert(schema.ci_deployments), history["deployments"])
        for n, (job_id, path, category, when) in enumerate(history["analyses"]):
            event = conn.execute(
                sa.insert(schema.failure_events)
                .values(
                    provider="gitlab",
                    project_id=f"p{n}",
                    project_path=path,
                    pipeline_id=f"e{n}",
                    source="email",
                    received_at=when,
                )
                .returning(schema.failure_events.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(schema.failure_analyses).values(
                    event_id=event, job_id=job_id, category=category, analyser="heuristic", created_at=when
                )
            )


def summary_of_every_row(history: dict[str, list[Any]], fields: tuple[str, ...]) -> dict[str, Any]:
    """``total`` and ``groups`` of :func:`analytics.window_summary` for ``[T, T + 7 d)``, computed by
    :mod:`.figures` from every row of the history (no loader: the reference)."""
    repo_of = {j["job_id"]: j["repo"] for j in history["jobs"]}
    categories: dict[tuple[str, str], str] = {}
    for job_id, path, category, _ in sorted(history["analyses"], key=lambda a: a[3]):  # the latest wins
        if path is None or path == repo_of[job_id]:
            categories[("gitlab", job_id)] = category
    history_start = T - WEEK - an.DEFAULT_HISTORY
    total, groups = f.compute_windows(
        f.RunIndex(history["runs"], history["jobs"]),
        windows=[(T, T + WEEK), (T - WEEK, T)],
        group_by=fields,
        categories=categories,
        history_start=history_start,
        history_end=T - WEEK,
        deployments=[d for d in history["deployments"] if d["finished_at"] >= history_start],
    )
    return {
        "total": {"current": total[0].to_dict(), "previous": total[1].to_dict()},
        "groups": [
            {"key": dict(zip(fields, key, strict=True)), "current": g[0].to_dict(), "previous": g[1].to_dict()}
            for key, g in sorted(groups.items(), key=lambda kv: an._sort_key(kv[0]))
            if not all(x.is_empty() for x in g)
        ],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_from_the_store_equals_the_figures_of_every_row(results_store: ResultsStore, seed: int) -> None:
    """What the loader selects (window, superseded runs, earlier attempts, history from the last green
    on, jobs, categories, deployments) is all the figures need: the same summary as from every row."""
    history = random_history(seed)
    store_history(results_store, history)
    for group_by in (None, "repo", ("repo", "workflow", "branch"), "branch"):
        got = an.window_summary(results_store, start=T, end=T + WEEK, group_by=group_by)
        expected = summary_of_every_row(history, tuple(got["group_by"]))
        assert got["total"] == expected["total"], group_by
        assert got["groups"] == expected["groups"], group_by
    assert got["total"]["current"]["runs"] > 20 and got["total"]["previous"]["runs"] > 20  # it means something
    assert got["total"]["current"]["rerun_attempts"] > 0 and got["total"]["current"]["failures_by_category"]


SUMMARY_ARGUMENTS: list[dict[str, Any]] = [
    {"group_by": "repo"},
    {"group_by": ("repo", "workflow", "branch")},
    {"actors": ["alice", "bob"], "group_by": "workflow"},
    {"repos": ["acme/web", "grp/app"], "branches": ["main"]},
    {"provider": "gitlab", "with_previous": False, "history": dt.timedelta(days=3)},
    {"workflows": ["CI"], "group_by": "branch"},
]


@pytest.mark.postgres
def test_postgresql_reads_rows_from_the_driver_and_gives_what_sqlite_gives(
    pg_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the loader takes the driver's rows as they come (and runs its queries meanwhile on
    connections of their own, a week of runs and jobs at a time): the same summaries as through
    SQLAlchemy's result processing, and as SQLite's, for every filter and grouping."""
    history = random_history(7)
    postgres, sqlite = ResultsStore(pg_url), ResultsStore(f"sqlite:///{tmp_path}/results.db")
    try:
        for store in (postgres, sqlite):
            store_history(store, history)
        fast = [an.window_summary(postgres, start=T, end=T + WEEK, **kw) for kw in SUMMARY_ARGUMENTS]
        from_sqlite = [an.window_summary(sqlite, start=T, end=T + WEEK, **kw) for kw in SUMMARY_ARGUMENTS]
        monkeypatch.setattr(an, "_rows", lambda conn, query: conn.execute(query).all())  # SQLAlchemy's way
        monkeypatch.setattr(an, "_next_batch", lambda result: result.fetchmany(an.JOB_BATCH))
        processed = [an.window_summary(postgres, start=T, end=T + WEEK, **kw) for kw in SUMMARY_ARGUMENTS]
    finally:
        postgres.dispose()
        sqlite.dispose()
    for kw, a, b, c in zip(SUMMARY_ARGUMENTS, fast, processed, from_sqlite, strict=True):
        assert a == b, kw
        assert a == c, kw
    assert [s["total"]["current"]["runs"] for s in fast] == [s["total"]["current"]["runs"] for s in from_sqlite]
    assert fast[0]["total"]["current"]["runs"] > 20


@pytest.mark.postgres
def test_rows_from_the_driver_have_utc_times(pg_url: str) -> None:
    store = ResultsStore(pg_url)
    try:
        seed(store)
        r = schema.ci_runs
        query = sa.select(r.c.run_id, r.c.finished_at).where(r.c.finished_at.is_not(None)).order_by(r.c.id)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")  # the server's zone must not show through
            rows = an._fetch_dicts(conn, query)
            processed = [dict(row._mapping) for row in conn.execute(query)]
    finally:
        store.dispose()
    assert rows == processed
    assert all(row["finished_at"].tzinfo is dt.UTC for row in rows)
    assert rows[0] == {"run_id": "100", "finished_at": at(-10)}


def test_window_summary_pauses_the_garbage_collector_and_restores_it(
    store: ResultsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    seen: list[bool] = []
    real = an.compute_windows

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(an, "compute_windows", watched)
    was = gc.isenabled()
    try:
        gc.enable()
        assert an.window_summary(store, start=T, end=T + WEEK)["total"]["current"]["runs"] == 6
        assert seen == [False] and gc.isenabled()
        gc.disable()  # someone else's choice is kept
        an.window_summary(store, start=T, end=T + WEEK)
        assert seen == [False, False] and not gc.isenabled()
        gc.enable()
        assert len(an.daily_rows(store, DAY2, computed_at=COLLECTED)) == 3  # the daily rows too
        assert seen == [False] * 4 and gc.isenabled()
        monkeypatch.setattr(an, "compute_windows", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            an.window_summary(store, start=T, end=T + WEEK)
        assert gc.isenabled()  # back on after a failure too
    finally:
        gc.enable() if was else gc.disable()


def test_figures_to_dict_is_a_deep_copy_as_asdict_makes() -> None:
    import dataclasses

    figures = f.compute_figures(
        RUNS,
        JOBS,
        start=T,
        end=T + WEEK,
        history_start=T - 4 * WEEK,
        deployments=DEPLOYMENTS,
        categories={("gitlab", "5011"): "compile_error"},
    )
    figures.dora["extra"] = (1, [2, 3])  # not JSON: copied the way asdict copies it
    data = figures.to_dict()
    assert data == dataclasses.asdict(figures)
    assert data["flaky_jobs"] and data["open_streaks"] and data["dora"]["rollback_deployments"]
    data["flaky_jobs"][0]["flaky_on"].append("x")
    data["open_streaks"].clear()
    data["dora"]["bands"]["lead_time"] = "x"
    data["dora"]["extra"][1].append(4)
    assert figures.to_dict() == dataclasses.asdict(figures) != data  # nothing shared with the figures
    assert figures.flaky_jobs[0]["flaky_on"] == ["g1"] and figures.dora["extra"] == (1, [2, 3])
