"""ci_pipeline_analytics end to end with dag.test() against the sandbox GitHub and GitLab.

The sandbox seeds weeks of history relative to its clock (acme/shop on GitHub; the payments group on
GitLab), so the tests pick data intervals a few days before the sandbox's today.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.slow

DAG_ID = "ci_pipeline_analytics"
TABLES = ("ci_runs", "ci_jobs", "ci_deployments", "ci_daily", "alert_events")


def midnight_days_ago(sandbox: Any, days: int) -> dt.datetime:
    now = dt.datetime.fromtimestamp(sandbox.advance(0), dt.UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=days)


def results_store(conns: dict[str, str]) -> Any:
    import json

    from devops_automation.store import ResultsStore, sqlite_url

    return ResultsStore(sqlite_url(json.loads(conns["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])["host"]))


def snapshot(store: Any, *, without: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of the analytics tables, without surrogate ids (and the ``without`` columns), sorted."""
    from devops_automation.store import schema

    out = {}
    with store.begin() as conn:
        for name in TABLES:
            t = schema.metadata.tables[name]
            cols = [c for c in t.c if c.name != "id" and c.name not in without]
            out[name] = sorted((tuple(repr(v) for v in r) for r in conn.execute(sa.select(*cols))), key=str)
    return out


def run_ids(store: Any, provider: str, repo: str) -> set[str]:
    from devops_automation.store import schema

    t = schema.ci_runs
    with store.begin() as conn:
        return {r.run_id for r in conn.execute(sa.select(t.c.run_id).where(t.c.provider == provider, t.c.repo == repo))}


def github_truth(sandbox: Any, repo: str, start: dt.datetime, end: dt.datetime) -> set[str]:
    owner, name = repo.split("/")
    got = sandbox.control(
        "github",
        "GET",
        f"/repos/{owner}/{name}/run_ids",
        params={"created_from": start.isoformat(), "created_to": end.isoformat()},
    )
    ids = got["run_ids"] if isinstance(got, dict) else got
    return {str(i) for i in ids}


def test_first_run_stores_every_attempt_and_a_rerun_changes_nothing(sandbox, run_dag, sandbox_conns) -> None:
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/shop"], "gitlab_projects": ["payments/checkout-api"], "lookback_days": 2}
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    assert end - start == dt.timedelta(days=1)
    store = results_store(sandbox_conns)
    expected = github_truth(sandbox, "acme/shop", start - dt.timedelta(days=2), end)
    assert expected, "the sandbox has runs in the window"
    assert run_ids(store, "github", "acme/shop") == expected
    assert run_ids(store, "gitlab", "payments/checkout-api"), "GitLab pipelines were stored"
    first = snapshot(store)
    assert first["ci_daily"], "daily figures were computed"
    assert first["ci_jobs"]
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    assert snapshot(store) == first  # a re-run of the interval changes no row


def test_a_missing_repository_fails_the_run_naming_it_and_the_others_are_stored(
    sandbox, run_dag, sandbox_conns
) -> None:
    day = midnight_days_ago(sandbox, 3)
    conf = {"github_repos": ["acme/shop", "acme/no-such-repo"], "lookback_days": 0}
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf, retries=0)
    assert str(dag_run.state) == "failed"
    assert states["summary"] == "failed"
    failed = [k for k, v in states.items() if k.startswith("collect_github[") and v == "failed"]
    assert len(failed) == 1, states
    store = results_store(sandbox_conns)
    assert run_ids(store, "github", "acme/shop") == github_truth(
        sandbox, "acme/shop", dag_run.data_interval_start, dag_run.data_interval_end
    )


def test_no_sources_configured_is_green_and_stores_nothing(sandbox, run_dag, sandbox_conns) -> None:
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, 2))
    assert str(dag_run.state) == "success", states
    assert snapshot(results_store(sandbox_conns))["ci_runs"] == []


def test_a_backfill_of_three_days_gives_the_rows_three_daily_runs_gave(
    sandbox, run_dag, sandbox_conns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    days = [midnight_days_ago(sandbox, n) for n in (6, 5, 4)]
    conf = {"github_repos": ["acme/shop"], "lookback_days": 1}
    for day in days:
        dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
        assert str(dag_run.state) == "success", states
    daily = snapshot(results_store(sandbox_conns))
    assert len({r[0] for r in daily["ci_daily"]}) >= 3
    # later, into a fresh results DB (the sandbox clock has moved on, as for a real backfill)
    sandbox.advance(6 * 3600)
    other = {
        **sandbox_conns,
        "AIRFLOW_CONN_DEVOPS_RESULTS_DB": json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "b.db")}),
    }
    monkeypatch.setenv("AIRFLOW_CONN_DEVOPS_RESULTS_DB", other["AIRFLOW_CONN_DEVOPS_RESULTS_DB"])
    for day in days:
        dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
        assert str(dag_run.state) == "success", states
    assert snapshot(results_store(other)) == daily


RULES = """
rules:
  - id: main-red
    kind: red_longer_than
    severity: critical
    hours: 1
    branch_pattern: main
    scope: {repos: acme/shop}
    channels: {slack: C0CIFAIL, telegram: "-1001234567890"}
"""


def test_an_alert_starts_once_and_a_rerun_or_backfill_sends_nothing(sandbox, run_dag, sandbox_conns, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules)}
    day = midnight_days_ago(sandbox, -1)  # the interval is today: acme/shop's main is red since this morning
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=day, conf=conf)
    assert str(dag_run.state) == "success", states
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    telegram = sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"})
    assert len(slack) == 1, slack
    assert len(telegram) == 1, telegram
    assert "main-red" in slack[0]["text"]
    assert "acme/shop" in telegram[0]["text"]
    store = results_store(sandbox_conns)
    history = snapshot(store)["alert_events"]
    assert len(history) == 1
    # the same interval again: still firing, nothing sent, the history unchanged
    run_dag(DAG_ID, logical_date=day, conf=conf)
    assert len(sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})) == 1
    assert snapshot(store)["alert_events"] == history


def test_with_paging_off_as_in_a_backfill_the_alert_is_recorded_and_nothing_is_sent(
    sandbox, run_dag, sandbox_conns, tmp_path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    conf = {"github_repos": ["acme/shop"], "lookback_days": 2, "alert_rules": str(rules), "page": False}
    dag_run, states = run_dag(DAG_ID, logical_date=midnight_days_ago(sandbox, -1), conf=conf)
    assert str(dag_run.state) == "success", states
    history = snapshot(results_store(sandbox_conns))["alert_events"]
    assert len(history) == 1
    assert "'firing'" in history[0]
    assert sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"}) == []
    assert sandbox.control("telegram", "GET", "/messages", params={"chat_id": "-1001234567890"}) == []
