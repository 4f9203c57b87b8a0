"""ci_run_action end to end: dag.test() against the sandbox GitHub and GitLab, each action and provider,
the refusals, a cancel that needs force-cancel, 403 / 404, a retried task that sends its write once, the
audit rows.

dag.test() runs the deferred wait's trigger inline until its event, then resumes the task, so the whole
path (guards -> write -> defer -> trigger -> execute_complete -> report) is what runs. The sandbox clock
is moved along in a background thread while a run waits (re-runs take minutes of sandbox time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import TELEGRAM_CHAT

pytestmark = pytest.mark.slow

DAG_ID = "ci_run_action"
FAST = {"poll_interval_seconds": 1, "timeout_minutes": 2}
_offsets = itertools.count(1)


@contextlib.contextmanager
def clock_running(sandbox, step: float = 40.0, every: float = 0.25) -> Iterator[None]:
    """Advance the sandbox clock by ``step`` seconds every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            sandbox.advance(step)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def sandbox_now(sandbox) -> dt.datetime:
    now = requests.get(f"{sandbox.base_url}/_sandbox/clock", timeout=10).json()["now"]
    return dt.datetime.fromtimestamp(now, dt.UTC)


@pytest.fixture
def act(sandbox, run_dag):
    """``act(conf, clock=False, retries=None)``: one ci_run_action run (a fresh logical date near the
    sandbox's now each time); returns ``(dag_run, states, audit row)``."""

    def run(conf: dict[str, Any], *, clock: bool = False, retries: int | None = None):
        from devops_automation.store import ResultsStore, run_actions

        when = sandbox_now(sandbox).replace(microsecond=0) + dt.timedelta(seconds=next(_offsets))
        with clock_running(sandbox) if clock else contextlib.nullcontext():
            dag_run, states = run_dag(DAG_ID, logical_date=when, conf={**FAST, **conf}, retries=retries)
        row = run_actions.get(ResultsStore.from_connection(), DAG_ID, dag_run.run_id)
        return dag_run, states, row

    return run


def run_note(run_id: str) -> str | None:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        return s.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)).note


def link(run_id: str, task_id: str) -> str:
    """The extra link's URL as the task stored it (XCom ``run_url``)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        value = s.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == DAG_ID,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == "run_url",
            )
        )
    return str(value)


@pytest.fixture
def api_note(airflow_api_server, monkeypatch) -> None:
    """Connection ``airflow_api`` to a real API server: the report writes the run's note."""
    import json

    conn = {"conn_type": "http", "host": airflow_api_server["url"], "login": "admin"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps({**conn, "password": airflow_api_server["password"]}))


def writes(sandbox, system: str) -> list[tuple[str, int]]:
    """Every write (POST) that reached the sandbox system: (path, status)."""
    return [(r["path"], r["status"]) for r in sandbox.requests(system=system, method="POST")]


def add_github_run(sandbox, repo: str = "acme/infra", **spec) -> int:
    made = sandbox.control("github", "POST", f"/repos/{repo}/runs", json={"runs": [spec]})
    return made["run_ids"][0]


# -- GitHub ----------------------------------------------------------------------------------------
def test_github_rerun_failed_waits_for_the_new_attempt_and_records_it(sandbox, act, api_note) -> None:
    run_id = add_github_run(sandbox, outcome="failure", age_s=3600, queue_s=5, duration_s=60)
    sandbox.clear_requests()
    conf = {"provider": "github", "repository": "acme/infra", "action": "rerun_failed", "run_id": run_id}
    dag_run, states, row = act({**conf, "reason": "flaky test", "notify": ["slack", "telegram"]}, clock=True)
    assert str(dag_run.state) == "success", states
    assert states == {"act_github": "success", "act_gitlab": "skipped", "report": "success"}
    assert writes(sandbox, "github") == [(f"/repos/acme/infra/actions/runs/{run_id}/rerun-failed-jobs", 201)]
    assert (row["state"], row["outcome"], row["attempt_before"], row["result_attempt"]) == ("done", "success", 1, 2)
    assert (row["provider"], row["repo"], row["run_id"], row["action"]) == (
        "github",
        "acme/infra",
        str(run_id),
        "rerun_failed",
    )
    assert (row["triggered_by"], row["reason"]) == ("dag_test", "flaky test")
    assert [(c["method"], c["status"]) for c in row["api_calls"]] == [("POST", 201)]
    assert row["url"].endswith(f"/actions/runs/{run_id}/attempts/2")
    assert row["sent_at"] is not None and row["finished_at"] >= row["sent_at"]
    run = requests.get(
        f"{sandbox.base_url}/github/repos/acme/infra/actions/runs/{run_id}",
        headers={"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000"},
        timeout=10,
    ).json()
    assert (run["run_attempt"], run["conclusion"]) == (2, "success")
    telegram = sandbox.control("telegram", "GET", "/messages", params={"chat_id": TELEGRAM_CHAT})
    slack = sandbox.control("slack", "GET", "/messages", params={"channel": "C0CIFAIL"})
    assert len(telegram) == len(slack) == 1
    assert "DONE" in telegram[0]["text"] and f"run {run_id}" in telegram[0]["text"] and "flaky test" in slack[0]["text"]
    note = run_note(dag_run.run_id)
    assert note.startswith(f"DONE: rerun_failed github acme/infra run {run_id}; outcome success: attempt 2 of run")
    assert "sent POST" in note and "-> 201; by dag_test: flaky test" in note
    assert link(dag_run.run_id, "act_github").endswith(f"/actions/runs/{run_id}/attempts/2")


@pytest.mark.parametrize(
    ("action", "spec", "refusal"),
    [
        ("rerun", {"age_s": 60, "queue_s": 1, "duration_s": 3600}, "is still in_progress"),
        ("cancel", {"outcome": "success", "age_s": 7200, "duration_s": 60}, "has already completed (success)"),
        ("rerun_failed", {"outcome": "success", "age_s": 7200, "duration_s": 60}, "it has no failed jobs"),
    ],
    ids=["rerun-in-progress", "cancel-finished", "rerun-failed-of-green"],
)
def test_github_refusals_send_nothing(sandbox, act, api_note, action: str, spec: dict, refusal: str) -> None:
    run_id = add_github_run(sandbox, **spec)
    sandbox.clear_requests()
    dag_run, states, row = act({"provider": "github", "repository": "acme/infra", "action": action, "run_id": run_id})
    assert str(dag_run.state) == "failed"
    assert states == {"act_github": "failed", "act_gitlab": "skipped", "report": "failed"}
    assert writes(sandbox, "github") == []
    assert (row["state"], row["outcome"]) == ("refused", "refused")
    assert refusal in row["outcome_detail"]
    assert row["api_calls"] is None
    assert run_note(dag_run.run_id).startswith(f"REFUSED: {action} github acme/infra run {run_id}; nothing sent: ")
    assert refusal in run_note(dag_run.run_id)


def test_github_cancel_ignored_is_force_cancelled(sandbox, act) -> None:
    run_id = add_github_run(sandbox, age_s=120, queue_s=1, duration_s=3600, ignores_cancel=True)
    sandbox.clear_requests()
    conf = {"provider": "github", "repository": "acme/infra", "action": "cancel", "run_id": run_id}
    dag_run, states, row = act({**conf, "force_cancel_after_minutes": 0.03})
    assert str(dag_run.state) == "success", states
    base = f"/repos/acme/infra/actions/runs/{run_id}"
    assert writes(sandbox, "github") == [(f"{base}/cancel", 202), (f"{base}/force-cancel", 202)]
    assert (row["state"], row["outcome"]) == ("done", "cancelled")
    assert [c["path"] for c in row["api_calls"]] == [f"{base}/cancel", f"{base}/force-cancel"]
    assert sandbox.control("github", "GET", "/counts")["cancels_ignored"] == 1


def test_github_cancel_that_lands(sandbox, act) -> None:
    run_id = add_github_run(sandbox, age_s=120, queue_s=1, duration_s=3600)
    dag_run, states, row = act({"provider": "github", "repository": "acme/infra", "action": "cancel", "run_id": run_id})
    assert str(dag_run.state) == "success", states
    assert [p for p, _ in writes(sandbox, "github")] == [f"/repos/acme/infra/actions/runs/{run_id}/cancel"]
    assert (row["state"], row["outcome"], row["result_attempt"]) == ("done", "cancelled", None)


def test_github_403_names_the_missing_permission(sandbox, act) -> None:
    run_id = add_github_run(sandbox, outcome="failure", age_s=3600, duration_s=60)
    sandbox.control("github", "POST", "/repos/acme/infra/forbidden", json={"path": r"/actions/runs/\d+/rerun"})
    sandbox.clear_requests()
    conf = {"provider": "github", "repository": "acme/infra", "action": "rerun", "run_id": run_id}
    dag_run, states, row = act(conf, retries=2)
    assert str(dag_run.state) == "failed"
    assert states["act_github"] == "failed"
    assert writes(sandbox, "github") == [(f"/repos/acme/infra/actions/runs/{run_id}/rerun", 403)]  # not retried
    assert (row["state"], row["outcome"]) == ("failed", "error")
    assert "actions:write" in row["outcome_detail"]
    assert "Resource not accessible by personal access token" in row["outcome_detail"]
    assert row["api_calls"][0]["status"] == 403


def test_github_404_run(sandbox, act) -> None:
    dag_run, states, row = act({"provider": "github", "repository": "acme/infra", "action": "rerun", "run_id": 999})
    assert str(dag_run.state) == "failed"
    assert states["act_github"] == "failed"
    assert writes(sandbox, "github") == []
    assert (row["state"], row["outcome"]) == ("failed", "error")
    assert "run 999 of acme/infra was not found (404)" in row["outcome_detail"]


def test_a_retried_task_finds_its_attempt_and_sends_once(sandbox, act) -> None:
    """The first try's wait fails (GitHub answers 404 for the new attempt once); the retried task finds the
    write recorded as sent and only waits: one POST in all."""
    run_id = add_github_run(sandbox, outcome="failure", age_s=3600, queue_s=5, duration_s=60)
    sandbox.fault(system="github", method="GET", path=rf"/actions/runs/{run_id}/attempts/2$", status=404, times=1)
    sandbox.clear_requests()
    conf = {"provider": "github", "repository": "acme/infra", "action": "rerun", "run_id": run_id}
    dag_run, states, row = act(conf, clock=True, retries=1)
    assert str(dag_run.state) == "success", states
    assert writes(sandbox, "github") == [(f"/repos/acme/infra/actions/runs/{run_id}/rerun", 201)]
    assert (row["state"], row["outcome"], row["result_attempt"]) == ("done", "success", 2)
    assert len(row["api_calls"]) == 1
    attempts = sandbox.requests(system="github", method="GET", path=rf"/actions/runs/{run_id}/attempts/2$")
    assert [r["status"] for r in attempts][:2] == [404, 200]  # the failed wait, then the retried task's


def test_dry_run_shows_the_call_and_sends_nothing(sandbox, act) -> None:
    run_id = add_github_run(sandbox, outcome="failure", age_s=3600, duration_s=60)
    sandbox.clear_requests()
    conf = {"provider": "github", "repository": "acme/infra", "action": "rerun_failed", "run_id": run_id}
    dag_run, states, row = act({**conf, "dry_run": True})
    assert str(dag_run.state) == "success", states
    assert writes(sandbox, "github") == []
    assert (row["state"], row["outcome"], row["dry_run"]) == ("dry_run", "dry_run", True)
    assert row["plan"]["path"] == f"/repos/acme/infra/actions/runs/{run_id}/rerun-failed-jobs"
    assert "would re-run the failed jobs" in row["outcome_detail"]


def _shop_production(sandbox) -> list[dict]:
    headers = {"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000"}
    base = f"{sandbox.base_url}/github/repos/acme/shop/deployments"
    found = requests.get(base, params={"environment": "production"}, headers=headers, timeout=10).json()
    for d in found:
        d["statuses"] = requests.get(f"{base}/{d['id']}/statuses", headers=headers, timeout=10).json()
    return found


def test_github_redeploy_reruns_the_workflow_run_that_deployed_the_sha(sandbox, act) -> None:
    deployments = _shop_production(sandbox)
    current = deployments[0]["sha"]
    target = next(
        d
        for d in deployments[1:]
        if d["sha"] != current and any(s["state"] == "success" for s in d["statuses"]) and d["statuses"][0]["log_url"]
    )
    linked = int(target["statuses"][0]["log_url"].rsplit("/", 1)[1])
    sandbox.clear_requests()
    conf = {
        "provider": "github",
        "repository": "acme/shop",
        "action": "redeploy",
        "environment": "production",
        "deployment": target["sha"][:10],
        "reason": "bad release",
    }
    dag_run, states, row = act(conf, clock=True)
    assert str(dag_run.state) == "success", states
    assert writes(sandbox, "github") == [(f"/repos/acme/shop/actions/runs/{linked}/rerun", 201)]
    assert (row["state"], row["outcome"], row["run_id"]) == ("done", "success", str(linked))
    assert (row["deployment_id"], row["target_sha"]) == (str(target["id"]), target["sha"])
    assert _shop_production(sandbox)[0]["sha"] == target["sha"]  # the re-run deployed the old SHA again


def test_github_redeploy_by_creating_a_deployment(sandbox, act) -> None:
    headers = {"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000"}
    listed = requests.get(
        f"{sandbox.base_url}/github/repos/acme/api/deployments",
        params={"environment": "production"},
        headers=headers,
        timeout=10,
    ).json()
    target = next(d for d in listed[2:] if d["sha"] != listed[0]["sha"] and "Rollback" not in (d["description"] or ""))
    sandbox.clear_requests()
    conf = {
        "provider": "github",
        "repository": "acme/api",
        "action": "redeploy",
        "environment": "production",
        "deployment": str(target["id"]),
        "redeploy_mode": "create_deployment",
    }
    dag_run, states, row = act(conf, clock=True)
    assert str(dag_run.state) == "success", states
    assert writes(sandbox, "github") == [("/repos/acme/api/deployments", 201)]
    assert (row["state"], row["outcome"]) == ("done", "success")
    body = sandbox.requests(system="github", method="POST", path="/deployments$")[0]["body"]
    assert f'"ref":"{target["sha"]}"' in body.replace(" ", "") and '"auto_merge":false' in body.replace(" ", "")
    made = requests.get(
        f"{sandbox.base_url}/github/repos/acme/api/deployments/{row['new_deployment_id']}", headers=headers, timeout=10
    ).json()
    assert made["sha"] == target["sha"] and made["payload"]["ci_run_action"]["run_id"] == row["airflow_run_id"]


def test_github_redeploy_of_a_sha_never_deployed_is_refused(sandbox, act) -> None:
    sandbox.clear_requests()
    conf = {
        "provider": "github",
        "repository": "acme/shop",
        "action": "redeploy",
        "environment": "production",
        "deployment": "deadbeef00",
    }
    dag_run, _, row = act(conf)
    assert str(dag_run.state) == "failed"
    assert writes(sandbox, "github") == []
    assert row["state"] == "refused"
    assert "deadbeef00 was never deployed to 'production' of acme/shop" in row["outcome_detail"]
    assert "its successful deployments, newest first" in row["outcome_detail"]


# -- GitLab ----------------------------------------------------------------------------------------
PROJECT = "payments/checkout-api"


def add_pipeline(sandbox, jobs: list[dict]) -> dict:
    return sandbox.control("gitlab", "POST", f"/projects/{PROJECT.replace('/', '%2F')}/pipelines", json={"jobs": jobs})


def test_gitlab_retry_of_a_failed_pipeline(sandbox, act) -> None:
    made = add_pipeline(
        sandbox,
        [
            {"name": "build", "stage": "build"},
            {"name": "unit-tests", "stage": "test", "status": "failed", "failure_reason": "script_failure"},
            {"name": "deploy-staging", "stage": "deploy", "status": "skipped"},
        ],
    )
    pid = made["id"]
    failed = next(j["id"] for j in made["jobs"] if j["name"] == "unit-tests")
    sandbox.control("gitlab", "POST", "/runner", json={"queue_s": 5, "duration_s": 30})
    sandbox.clear_requests()
    dag_run, states, row = act(
        {"provider": "gitlab", "repository": PROJECT, "action": "rerun_failed", "run_id": pid}, clock=True
    )
    assert str(dag_run.state) == "success", states
    assert states == {"act_github": "skipped", "act_gitlab": "success", "report": "success"}
    assert writes(sandbox, "gitlab") == [(f"/api/v4/projects/2001/pipelines/{pid}/retry", 201)]
    assert (row["state"], row["outcome"], row["repo"]) == ("done", "success", PROJECT)
    assert row["retried_job_ids"] == [str(failed)]
    assert len(row["new_job_ids"]) == 1 and int(row["new_job_ids"][0]) > failed
    assert row["url"].endswith(f"/-/pipelines/{pid}")


def test_gitlab_cancel_of_a_running_pipeline(sandbox, act) -> None:
    made = add_pipeline(sandbox, [{"name": "build", "stage": "build", "status": "running", "duration": 600}])
    dag_run, states, row = act({"provider": "gitlab", "repository": PROJECT, "action": "cancel", "run_id": made["id"]})
    assert str(dag_run.state) == "success", states
    assert writes(sandbox, "gitlab") == [(f"/api/v4/projects/2001/pipelines/{made['id']}/cancel", 200)]
    assert (row["state"], row["outcome"]) == ("done", "cancelled")


@pytest.mark.parametrize(
    ("action", "status", "refusal"),
    [("rerun", "running", "is still running"), ("cancel", "success", "has already finished (success)")],
    ids=["rerun-running", "cancel-finished"],
)
def test_gitlab_refusals_send_nothing(sandbox, act, action: str, status: str, refusal: str) -> None:
    made = add_pipeline(sandbox, [{"name": "build", "stage": "build", "status": status}])
    sandbox.clear_requests()
    dag_run, states, row = act({"provider": "gitlab", "repository": PROJECT, "action": action, "run_id": made["id"]})
    assert str(dag_run.state) == "failed"
    assert states["act_gitlab"] == "failed" and states["act_github"] == "skipped"
    assert writes(sandbox, "gitlab") == []
    assert row["state"] == "refused" and refusal in row["outcome_detail"]


def test_gitlab_403_names_the_missing_role(sandbox, act) -> None:
    made = add_pipeline(sandbox, [{"name": "unit-tests", "stage": "test", "status": "failed"}])
    sandbox.fault(system="gitlab", method="POST", path=r"/pipelines/\d+/retry$", status=403)
    sandbox.clear_requests()
    dag_run, _, row = act({"provider": "gitlab", "repository": PROJECT, "action": "rerun", "run_id": made["id"]})
    assert str(dag_run.state) == "failed"
    assert writes(sandbox, "gitlab") == [(f"/api/v4/projects/2001/pipelines/{made['id']}/retry", 403)]
    assert (row["state"], row["outcome"]) == ("failed", "error")
    assert "the api scope and at least the Developer role" in row["outcome_detail"]
    assert "Maintainer" in row["outcome_detail"] and "403 Forbidden" in row["outcome_detail"]


def test_gitlab_404_pipeline(sandbox, act) -> None:
    dag_run, _, row = act({"provider": "gitlab", "repository": PROJECT, "action": "cancel", "run_id": 12345})
    assert str(dag_run.state) == "failed"
    assert writes(sandbox, "gitlab") == []
    assert "pipeline 12345 of payments/checkout-api was not found (404)" in row["outcome_detail"]


def test_gitlab_rerun_of_one_job(sandbox, act) -> None:
    made = add_pipeline(sandbox, [{"name": "build", "stage": "build"}, {"name": "lint", "stage": "test"}])
    lint = next(j["id"] for j in made["jobs"] if j["name"] == "lint")
    sandbox.control("gitlab", "POST", "/runner", json={"queue_s": 5, "duration_s": 30, "status": "failed"})
    conf = {"provider": "gitlab", "repository": PROJECT, "action": "rerun", "run_id": made["id"], "job_id": lint}
    dag_run, states, row = act(conf, clock=True)
    assert str(dag_run.state) == "success", states  # the re-run ran (and failed): the action did what was asked
    assert writes(sandbox, "gitlab") == [(f"/api/v4/projects/2001/jobs/{lint}/retry", 201)]
    assert (row["state"], row["outcome"], row["retried_job_ids"]) == ("done", "failure", [str(lint)])
    assert int(row["new_job_ids"][0]) > lint


def test_gitlab_redeploy_retries_the_deploy_job_of_an_earlier_deployment(sandbox, act) -> None:
    headers = {"PRIVATE-TOKEN": "glpat-sandbox-token"}
    listed = requests.get(
        f"{sandbox.base_url}/gitlab/api/v4/projects/2001/deployments",
        params={"environment": "production", "status": "success", "order_by": "id", "sort": "desc"},
        headers=headers,
        timeout=10,
    ).json()
    target = next(d for d in listed[1:] if d["sha"] != listed[0]["sha"])
    sandbox.control("gitlab", "POST", "/runner", json={"queue_s": 5, "duration_s": 30})
    sandbox.clear_requests()
    conf = {
        "provider": "gitlab",
        "repository": PROJECT,
        "action": "redeploy",
        "environment": "production",
        "deployment": target["sha"][:8],
    }
    dag_run, states, row = act(conf, clock=True)
    assert str(dag_run.state) == "success", states
    [(path, status)] = writes(sandbox, "gitlab")
    assert status == 201 and path.startswith("/api/v4/projects/2001/jobs/") and path.endswith("/retry")
    assert (row["state"], row["outcome"], row["target_sha"]) == ("done", "success", target["sha"])
    newest = requests.get(
        f"{sandbox.base_url}/gitlab/api/v4/projects/2001/deployments",
        params={"environment": "production", "order_by": "id", "sort": "desc"},
        headers=headers,
        timeout=10,
    ).json()[0]
    assert (newest["sha"], newest["status"]) == (target["sha"], "success")  # the old SHA is back out
