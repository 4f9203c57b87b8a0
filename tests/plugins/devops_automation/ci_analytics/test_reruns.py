"""Re-runs split by who asked (ci_run_action's tags in ci_run_actions), on SQLite and PostgreSQL; the totals
are the figures' own re-run numbers."""

from __future__ import annotations

import datetime as dt

from devops_automation.ci_analytics.analytics import window_summary
from devops_automation.ci_analytics.reruns import rerun_origins
from devops_automation.store import ResultsStore, run_actions, schema

DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours)


def run(provider: str, repo: str, run_id: str, attempt: int, status: str, finished: float, seconds: float) -> dict:
    return {
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "attempt": attempt,
        "workflow": "CI",
        "branch": "main",
        "sha": f"sha-{run_id}",
        "status": status,
        "created_at": at(1),
        "finished_at": at(finished),
        "duration_s": seconds,
        "collected_at": at(23),
    }


def job(run_id: str, job_id: str, name: str, status: str, seconds: float, retried: bool) -> dict:
    return {
        "provider": "gitlab",
        "repo": "payments/api",
        "run_id": run_id,
        "attempt": 1,
        "job_id": job_id,
        "name": name,
        "status": status,
        "duration_s": seconds,
        "retried": retried,
    }


def action(n: int, provider: str, repo: str, run_id: str, state: str = "done", **values) -> dict:
    return {
        "dag_id": "ci_run_action",
        "airflow_run_id": f"manual__{n}",
        "requested_at": at(2),
        "provider": provider,
        "repo": repo,
        "run_id": run_id,
        "action": values.pop("action", "rerun_failed"),
        "state": state,
        "created_at": at(2),
        **values,
    }


def test_reruns_made_through_ci_run_action_are_told_apart(results_store: ResultsStore) -> None:
    runs = [
        run("github", "acme/api", "1", 1, "failure", 3, 600),  # re-run through ci_run_action (attempt 2)
        run("github", "acme/api", "1", 2, "success", 4, 300),
        run("github", "acme/api", "2", 1, "failure", 5, 240),  # re-run by someone in GitHub's UI
        run("github", "acme/api", "2", 2, "success", 6, 200),
        run("github", "acme/api", "3", 1, "failure", 5, 100),  # a dry run and a refusal tag nothing
        run("github", "acme/api", "3", 2, "success", 6, 100),
        run("gitlab", "payments/api", "900", 1, "success", 7, 900),
        run("github", "acme/api", "4", 1, "failure", 8, 50),  # re-run here, but the re-run ends the next day:
        run("github", "acme/api", "4", 2, "success", 30, 50),  # the run belongs to the next day's window
    ]
    jobs = [
        job("900", "11", "unit", "failed", 300, True),  # retried by ci_run_action
        job("900", "12", "lint", "failed", 120, True),  # retried by hand
        job("900", "13", "unit", "success", 280, False),
        job("900", "14", "lint", "success", 100, False),
    ]
    with results_store.begin() as conn:
        conn.execute(schema.ci_runs.insert(), runs)
        conn.execute(schema.ci_jobs.insert(), jobs)
    run_actions.begin(results_store, action(1, "github", "acme/api", "1", result_attempt=2))
    run_actions.begin(results_store, action(5, "github", "acme/api", "4", result_attempt=2))
    run_actions.begin(results_store, action(2, "github", "acme/api", "3", state="dry_run", result_attempt=2))
    run_actions.begin(results_store, action(3, "github", "acme/api", "3", state="refused"))
    gitlab = action(4, "gitlab", "payments/api", "900", retried_job_ids=["11"], new_job_ids=["13"])
    run_actions.begin(results_store, gitlab)

    found = rerun_origins(results_store, start=DAY, end=DAY + dt.timedelta(days=1))

    assert found["requested"]["attempts"] == 2
    assert found["requested"]["minutes"] == (600 + 300) / 60
    assert found["other"] == {"attempts": 3, "minutes": (240 + 100 + 120) / 60}
    assert found["requested"]["runs"] == [
        {"provider": "github", "repo": "acme/api", "run_id": "1", "attempts": [2], "jobs": []},
        {"provider": "gitlab", "repo": "payments/api", "run_id": "900", "attempts": [], "jobs": ["11"]},
    ]
    figures = window_summary(results_store, start=DAY, end=DAY + dt.timedelta(days=1))["total"]["current"]
    assert (found["rerun_attempts"], found["rerun_minutes"]) == (figures["rerun_attempts"], figures["rerun_minutes"])
    only_github = rerun_origins(results_store, start=DAY, end=DAY + dt.timedelta(days=1), provider="github")
    assert (only_github["requested"]["attempts"], only_github["other"]["attempts"]) == (1, 2)
    next_day = rerun_origins(results_store, start=DAY + dt.timedelta(days=1), end=DAY + dt.timedelta(days=2))
    assert next_day["requested"] == {
        "attempts": 1,
        "minutes": 50 / 60,
        "runs": [{"provider": "github", "repo": "acme/api", "run_id": "4", "attempts": [2], "jobs": []}],
    }
