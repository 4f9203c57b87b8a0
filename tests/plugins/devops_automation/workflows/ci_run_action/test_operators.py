"""The action task's recovery when a try died with its write in flight (audit row left ``sending``): it
asks GitHub whether the write went through and sends it only if it did not."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from devops_automation.store import ResultsStore, run_actions
from devops_automation.workflows.ci_run_action.operators import CIRunActionOperator
from devops_automation.workflows.ci_run_action.plan import parse_request, plan_github_run

GH_AUTH = {"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000"}


class TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(params: dict, now: dt.datetime) -> dict:
    dag_run = SimpleNamespace(run_after=now, triggering_user_name="alice")
    return {
        "params": params,
        "dag": SimpleNamespace(dag_id="ci_run_action"),
        "run_id": "manual__recover",
        "ti": TI(),
        "dag_run": dag_run,
    }


@pytest.fixture
def safeguard_off():
    from airflow.sdk.bases.operator import ExecutorSafeguard

    ExecutorSafeguard.test_mode = True
    yield
    ExecutorSafeguard.test_mode = False


@pytest.mark.parametrize("went_through", [True, False], ids=["write-went-through", "write-lost"])
def test_a_try_that_died_mid_write_sends_at_most_once(
    sandbox_conns, sandbox, safeguard_off, went_through: bool
) -> None:
    import requests
    from airflow.sdk.exceptions import TaskDeferred

    from devops_automation.hooks.github import GitHubHook

    made = sandbox.control(
        "github", "POST", "/repos/acme/infra/runs", json={"runs": [{"outcome": "failure", "age_s": 3600}]}
    )
    run_id = made["run_ids"][0]
    params = {"provider": "github", "repository": "acme/infra", "action": "rerun", "run_id": run_id, "reason": "x"}
    now = dt.datetime.fromtimestamp(requests.get(f"{sandbox.base_url}/_sandbox/clock", timeout=5).json()["now"], dt.UTC)
    plan = plan_github_run(parse_request(params), GitHubHook().workflow_run("acme/infra", run_id), now)
    store = ResultsStore.from_connection()
    run_actions.begin(
        store,
        {
            "dag_id": "ci_run_action",
            "airflow_run_id": "manual__recover",
            "requested_at": now,
            "provider": "github",
            "repo": "acme/infra",
            "run_id": str(run_id),
            "action": "rerun",
            "state": "sending",
            "attempt_before": 1,
            "plan": plan.as_dict(),
            "url": plan.url,
            "created_at": now,
        },
    )
    if went_through:  # the earlier try's POST reached GitHub; the try died before recording the answer
        rerun = f"{sandbox.base_url}/github/repos/acme/infra/actions/runs/{run_id}/rerun"
        assert requests.post(rerun, headers=GH_AUTH, timeout=5).status_code == 201
    sandbox.clear_requests()
    op = CIRunActionOperator(task_id="act_github", provider="github")
    ctx = context(params, now)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    posts = [r["path"] for r in sandbox.requests(system="github", method="POST")]
    assert posts == ([] if went_through else [f"/repos/acme/infra/actions/runs/{run_id}/rerun"])
    row = run_actions.get(store, "ci_run_action", "manual__recover")
    assert (row["state"], row["result_attempt"]) == ("sent", 2)
    answers = [c["answer"] for c in row["api_calls"]]
    assert answers == (["found (sent by an earlier try)"] if went_through else [{}])
    trigger = deferred.value.trigger
    assert trigger.watch == {"kind": "attempt", "run_id": run_id, "attempt": 2}
    assert ctx["ti"].pushed["run_url"].endswith(f"/actions/runs/{run_id}")
    with pytest.raises(TaskDeferred):  # and a further retry only waits
        op.execute(context(params, now))
    assert len(sandbox.requests(system="github", method="POST")) == len(posts)
