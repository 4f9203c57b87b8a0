"""devlake_blueprint_monitor end to end with dag.test() against the sandbox DevLake and Telegram.

dag.test() runs each deferred task's trigger inline (in this process) until its first event, then
resumes the task, so the deferral path (sensor → trigger → execute_complete → re-defer) is what runs.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import TELEGRAM_CHAT

pytestmark = pytest.mark.slow

DAG_ID = "devlake_blueprint_monitor"
MONDAY = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)
FAST = {"poll_interval_seconds": 1}


@pytest.fixture
def projects(sandbox, run_dag) -> dict[str, int]:
    """Four DevLake projects (from the setup DAG, github repos of the first owner only): name -> blueprint id."""
    from devops_automation.hooks.devlake import DevLakeHook

    run_dag("devlake_project_setup", logical_date=MONDAY, conf={"plugins": ["github"], "include": ["^sandbox-bot/"]})
    found = {p["name"]: int(p["blueprint"]["id"]) for p in DevLakeHook().projects()}
    assert len(found) >= 3
    sandbox.control("devlake", "POST", "/settings", json={"taskSeconds": 0.3, "maxParallel": 20})
    sandbox.clear_requests()
    return found


def messages(sandbox) -> list[dict]:
    return sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})


def run_note(run_id: str) -> str | None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        return s.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)).note


def test_all_pipelines_succeed_no_alert_and_the_dag_ends(
    sandbox, run_dag, projects, airflow_api_server, monkeypatch
) -> None:
    api = {"conn_type": "http", "host": airflow_api_server["url"], "login": "admin"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps({**api, "password": airflow_api_server["password"]}))
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf=FAST)
    assert str(dag_run.state) == "success", states
    assert messages(sandbox) == []
    counts = sandbox.control("devlake", "GET", "/counts")
    assert counts["pipelines"] == {"TASK_COMPLETED": len(projects)}
    assert run_note(dag_run.run_id) == f"{len(projects)} pipelines: succeeded {len(projects)}"


def test_one_failure_is_alerted_before_the_others_finish_and_a_rerun_recovers(sandbox, run_dag, projects) -> None:
    names = sorted(projects)
    failing = names[0]
    sandbox.control(
        "devlake",
        "POST",
        "/scripts",
        json={
            "blueprintId": projects[failing],
            "failAtTask": 1,
            "message": "github: 403 rate limit exceeded",
            "succeedOnRerun": True,
        },
    )
    for name in names[1:]:
        sandbox.control("devlake", "POST", "/scripts", json={"blueprintId": projects[name], "taskSeconds": 4})
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf=FAST)
    assert str(dag_run.state) == "success", states  # the rerun completed
    sent = messages(sandbox)
    assert len(sent) == 2, sent
    alert, recovered = sent
    assert "failed" in alert["text"]
    assert failing in alert["text"]
    assert "403 rate limit exceeded" in alert["text"]
    assert "recovered" in recovered["text"]
    assert failing in recovered["text"]
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    assert [("failed" in m["text"], "recovered" in m["text"]) for m in slack] == [
        (True, False),
        (False, True),
    ]  # same alerts, mrkdwn
    # the alert went out while the other pipelines were still running
    from devops_automation.hooks.devlake import DevLakeHook, parse_iso

    others_done = max(
        parse_iso(p["finishedAt"]).timestamp()
        for p in DevLakeHook().pipelines()
        if int(p["blueprintId"]) != projects[failing]
    )
    alert_sent = sandbox.requests(system="telegram", path="/sendMessage$")[0]["ts"]
    assert alert_sent < others_done


def test_a_retried_watch_does_not_alert_twice(sandbox, run_dag, projects) -> None:
    """A retried (or cleared) watch task sees the same failure again: the alert is not sent twice."""
    from airflow.sdk.bases.operator import ExecutorSafeguard
    from airflow.sdk.exceptions import TaskDeferred

    from devops_automation.hooks.devlake import DevLakeHook
    from devops_automation.sensors.devlake import DevLakePipelinesSensor

    failing = sorted(projects)[0]
    sandbox.control(
        "devlake", "POST", "/scripts", json={"blueprintId": projects[failing], "failAtTask": 1, "message": "boom"}
    )
    pipeline = DevLakeHook().trigger_blueprint(projects[failing])
    sensor = DevLakePipelinesSensor(task_id="watch", pipelines=[pipeline["id"]], poll_interval=0.2)
    ExecutorSafeguard.test_mode = True
    try:
        for _attempt in (1, 2):  # the same task run twice from scratch, as a retry does
            with pytest.raises(TaskDeferred) as first:
                sensor.execute({"run_id": "r1"})
            import asyncio

            event = asyncio.run(anext(first.value.trigger.run())).payload
            assert event["status"] == "failure"
            with pytest.raises(TaskDeferred):  # alerted, then deferred again to wait for the rest
                sensor.execute_complete({"run_id": "r1"}, event)
    finally:
        ExecutorSafeguard.test_mode = False
    assert len(messages(sandbox)) == 1


def test_a_bad_chat_id_is_a_clear_error_and_the_failures_are_still_recorded(
    sandbox, run_dag, projects, monkeypatch, sandbox_conns
) -> None:
    conn = json.loads(sandbox_conns["AIRFLOW_CONN_TELEGRAM_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", json.dumps({**conn, "host": "-100999"}))
    failing = sorted(projects)[0]
    sandbox.control(
        "devlake", "POST", "/scripts", json={"blueprintId": projects[failing], "failAtTask": 1, "message": "boom"}
    )
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf={**FAST, "rerun_failed": False}, retries=0)
    assert states["watch"] == "success"
    assert states["collect_failures"] == "success"
    assert str(dag_run.state) == "failed"  # the summary reports the failed project
    from devops_automation.store import ResultsStore

    pending = ResultsStore.from_connection().pending_notifications("telegram")
    assert len(pending) == 1
    assert "chat not found" in pending[0]["error"].lower()


def test_nothing_running_nothing_to_do(sandbox, run_dag) -> None:
    dag_run, states = run_dag(DAG_ID, logical_date=MONDAY, conf={**FAST, "trigger": "none"})
    assert str(dag_run.state) == "success", states
    assert messages(sandbox) == []


def test_devlake_unreachable_sends_one_alert_then_fails(sandbox, sandbox_conns) -> None:
    from airflow.sdk.bases.operator import ExecutorSafeguard

    from devops_automation.sensors.devlake import DevLakePipelinesSensor

    sensor = DevLakePipelinesSensor(task_id="watch", pipelines=[1])
    event = {
        "status": "error",
        "message": "DevLake unreachable for 900s: connection refused",
        "state": {"pipeline_ids": [1]},
    }
    ExecutorSafeguard.test_mode = True
    try:
        for _ in range(2):  # the task and its retry
            with pytest.raises(RuntimeError, match="unreachable"):
                sensor.execute_complete({"run_id": "r9", "dag": type("D", (), {"dag_id": DAG_ID})()}, event)
    finally:
        ExecutorSafeguard.test_mode = False
    (msg,) = messages(sandbox)
    assert "DevLake unreachable" in msg["text"]
