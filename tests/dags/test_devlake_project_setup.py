"""devlake_project_setup end to end with dag.test() against the sandbox DevLake (and Telegram)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import TELEGRAM_CHAT

pytestmark = pytest.mark.slow

DAG_ID = "devlake_project_setup"
MONDAY = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)
TUESDAY = dt.datetime(2026, 11, 24, 6, tzinfo=dt.UTC)


def devlake_counts(sandbox) -> dict:
    return sandbox.control("devlake", "GET", "/counts")


def writes(sandbox) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.requests(system="devlake") if r["method"] != "GET"]


def remote_repo_count(sandbox) -> int:
    """How many selectable repositories the seeded remote trees hold (walked like the DAG does)."""
    from devops_automation.hooks.devlake import DevLakeHook

    hook = DevLakeHook()
    total = 0
    for plugin in ("github", "gitlab", "bitbucket", "jira", "azuredevops_go"):
        for conn in hook.connections(plugin) or []:
            total += sum(1 for _ in hook.remote_scopes(plugin, int(conn["id"])))
    return total


def run_note(run_id: str) -> str | None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        return s.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)).note


def telegram_messages(sandbox) -> list[dict]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def test_fresh_devlake_gets_one_project_per_repository_then_a_rerun_writes_nothing(
    sandbox, run_dag, airflow_api_server, monkeypatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRFLOW_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": airflow_api_server["url"],
                "login": airflow_api_server["login"],
                "password": airflow_api_server["password"],
            }
        ),
    )
    expected = remote_repo_count(sandbox)
    assert expected >= 50
    sandbox.clear_requests()

    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY)
    assert str(dag_run.state) == "success", states
    assert (
        run_note(dag_run.run_id)
        == f"projects created {expected}, updated 0, unchanged 0, failed 0; new scopes {expected}"
    )
    counts = devlake_counts(sandbox)
    assert counts["projects"] == expected == counts["scopes"] == counts["webhookConnections"]
    assert counts["scopeConfigs"] == sum(counts["connections"].values())  # one per connection

    # each blueprint: exactly its repository's scope, the webhook, manual, timeAfter = Saturday before Monday
    from devops_automation.hooks.devlake import DevLakeHook

    hook = DevLakeHook()
    all_projects = list(hook.projects())
    assert len({p["name"] for p in all_projects}) == expected
    for p in all_projects:
        bp = p["blueprint"]
        plugins = sorted(c["pluginName"] for c in bp["connections"])
        assert plugins.count("webhook") == 1, bp["connections"]
        assert len(plugins) == 2, bp["connections"]
        data = next(c for c in bp["connections"] if c["pluginName"] != "webhook")
        assert len(data["scopes"]) == 1
        assert bp["isManual"] is True
        assert bp["enable"] is True
        assert bp["timeAfter"].startswith("2026-11-21T00:00:00")
        assert any(m["pluginName"] == "dora" and m["enable"] for m in p["metrics"] or [])
        assert len(p["name"]) <= 100
        assert "/" not in p["name"]

    # the webhook API keys went to masked Variables, never to XCom
    from airflow.models import Variable
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        keys = [v for v in s.scalars(select(Variable)) if v.key.startswith("devlake_webhook_secret_")]
        xcoms = [str(x.value) for x in s.scalars(select(XComModel).where(XComModel.dag_id == DAG_ID))]
    assert len(keys) == expected
    assert all(k.val for k in keys)
    assert xcoms  # the run did push XComs: the check below looks at something
    assert not any(k.val in x for k in keys[:5] for x in xcoms)

    # an unchanged DevLake: the second run (same week) makes no write call at all
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=TUESDAY)
    assert str(dag_run.state) == "success", states
    assert writes(sandbox) == []
    assert telegram_messages(sandbox) == []


def test_a_repository_added_remotely_becomes_exactly_one_new_project(sandbox, run_dag) -> None:
    run_dag(DAG_ID, logical_date=MONDAY)
    before = devlake_counts(sandbox)["projects"]
    from devops_automation.hooks.devlake import DevLakeHook

    conn = DevLakeHook().connections("github")[0]
    sandbox.control(
        "devlake", "POST", f"/connections/github/{conn['id']}/remote-repos", json={"name": "brand-new-service"}
    )
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=TUESDAY)
    assert str(dag_run.state) == "success", states
    assert devlake_counts(sandbox)["projects"] == before + 1
    posted = [w for w in writes(sandbox) if w.startswith("POST /projects")]
    assert len(posted) == 1
    assert sum(1 for w in writes(sandbox) if w.startswith("PATCH /blueprints/")) == 1


def test_failures_in_one_connection_do_not_stop_the_others_and_are_reported_once(sandbox, run_dag) -> None:
    from devops_automation.hooks.devlake import DevLakeHook

    hook = DevLakeHook()
    broken = hook.connections("gitlab")[0]
    sandbox.control(
        "devlake",
        "POST",
        f"/connections/gitlab/{broken['id']}/remote-failure",
        json={"status": 502, "message": "GitLab is down"},
    )
    # bursts of 429 and 500 on the write path: retried, honouring Retry-After
    sandbox.fault(system="devlake", method="POST", path=r"^/projects$", status=429, retry_after=0, times=3)
    sandbox.fault(system="devlake", method="PATCH", path=r"^/blueprints/", status=500, times=2)

    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, retries=0)
    assert str(dag_run.state) == "failed"
    failed = sorted(k for k, v in states.items() if v == "failed")
    assert any(k.startswith("sync_scopes[") for k in failed)
    assert "summary" in failed
    ensure_states = [v for k, v in states.items() if k.startswith("ensure_projects")]
    assert ensure_states
    assert set(ensure_states) == {"success"}
    counts = devlake_counts(sandbox)
    assert counts["projects"] > 0
    messages = telegram_messages(sandbox)
    assert len(messages) == 1
    assert "scope sync failed" in messages[0]["text"]
    assert f"gitlab#{broken['id']}" in messages[0]["text"]

    # GitLab is back: the next run completes the rest, with no duplicate project and no new alert
    sandbox.control("devlake", "POST", f"/connections/gitlab/{broken['id']}/remote-failure", json={"status": None})
    dag_run, states = run_dag(DAG_ID, logical_date=TUESDAY, retries=0)
    assert str(dag_run.state) == "success", states
    assert devlake_counts(sandbox)["projects"] == remote_repo_count(sandbox)
    assert len(telegram_messages(sandbox)) == 1


def test_a_batch_that_dies_half_way_is_completed_by_its_retry(sandbox, run_dag) -> None:
    # the 4th blueprint PATCH fails hard once (400: not retried inside the hook); the task retry redoes the batch
    sandbox.fault(
        system="devlake",
        method="PATCH",
        path=r"^/blueprints/",
        status=400,
        message="transient validation",
        skip=3,
        times=1,
    )
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, retries=1)
    assert str(dag_run.state) == "success", states
    counts = devlake_counts(sandbox)
    assert counts["projects"] == remote_repo_count(sandbox) == counts["webhookConnections"]


def test_dry_run_writes_nothing(sandbox, run_dag) -> None:
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf={"dry_run": True})
    assert str(dag_run.state) == "success", states
    assert writes(sandbox) == []
    assert devlake_counts(sandbox)["projects"] == 0


def test_html_instead_of_json_is_a_clear_error_without_retries(sandbox, run_dag) -> None:
    sandbox.control("devlake", "POST", "/settings", json={"html_mode": True})
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, retries=0)
    assert states["discover_connections"] == "failed"
    assert str(dag_run.state) == "failed"
    paths = [(r["method"], r["path"]) for r in sandbox.requests(system="devlake")]
    assert len(paths) == len(set(paths))  # no call repeated: an HTML answer is not retried


def test_pending_migration_fails_at_once(sandbox, run_dag) -> None:
    sandbox.control("devlake", "POST", "/settings", json={"migration_pending": True})
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, retries=0)
    assert states["discover_connections"] == "failed"
    assert str(dag_run.state) == "failed"
    answered = [(r["method"], r["path"], r["status"]) for r in sandbox.requests(system="devlake") if r["status"] == 428]
    assert answered
    assert len(answered) == len(set(answered))  # each call made once: 428 is never retried


def test_names_are_sanitised_unique_and_within_devlakes_limit(sandbox, run_dag) -> None:
    import re

    from devops_automation.hooks.devlake import DevLakeHook

    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf={"project_name_template": "{plugin}:{full_name}"})
    assert str(dag_run.state) == "success", states
    names = [p["name"] for p in DevLakeHook().projects()]
    assert len(set(names)) == len(names)
    assert all("/" not in n for n in names)
    assert all(0 < len(n) <= 100 for n in names)
    long = [n for n in names if "platform-observability" in n]
    assert len(long) == 2
    assert [len(n) for n in long] == [100, 100]
    assert all(re.search(r"-[0-9a-f]{8}$", n) for n in long), long
    assert all(n.startswith(("github:", "gitlab:", "bitbucket:", "jira:")) for n in names)


def test_a_connection_without_remote_repositories_is_fine(sandbox, run_dag) -> None:
    from devops_automation.hooks.devlake import DevLakeHook

    hook = DevLakeHook()
    hook.request_json(
        "POST",
        "/plugins/github/connections",
        json={"name": "empty-org", "endpoint": "https://api.github.com/", "token": "t"},
    )
    expected = remote_repo_count(sandbox)
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY)
    assert str(dag_run.state) == "success", states
    assert devlake_counts(sandbox)["projects"] == expected


def test_a_wrong_api_key_fails_clearly_without_a_retry_storm(sandbox, run_dag, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVLAKE_DEFAULT",
        json.dumps({"conn_type": "http", "host": f"{sandbox.base_url}/devlake", "password": "not-a-key"}),
    )
    sandbox.clear_requests()
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, retries=0)
    assert states["discover_connections"] == "failed"
    assert str(dag_run.state) == "failed"
    paths = [(r["method"], r["path"]) for r in sandbox.requests(system="devlake")]
    assert paths  # it did ask DevLake
    assert len(paths) == len(set(paths))
    assert {r["status"] for r in sandbox.requests(system="devlake")} == {403}
