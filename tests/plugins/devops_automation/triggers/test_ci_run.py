"""CIRunActionTrigger: serialisation, what ends a wait, and real polls of the sandbox GitHub and GitLab
(rate limit waited out, 404 and unreachable as errors, a cancel not taken, the deadline)."""

from __future__ import annotations

import time

import pytest
import requests
from airflow.sdk.module_loading import import_string

from devops_automation.triggers.ci_run import CLASSPATH, CIRunActionTrigger, assess

GH_AUTH = {"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000"}


def trigger(**kw) -> CIRunActionTrigger:
    args = {
        "provider": "github",
        "repo": "acme/infra",
        "watch": {"kind": "attempt", "run_id": 1, "attempt": 2},
        "deadline": time.time() + 60,
        "poll_interval": 0.05,
        **kw,
    }
    made = CIRunActionTrigger(**args)
    made.slept = []

    async def sleep(seconds: float) -> None:
        made.slept.append(seconds)

    made._sleep = sleep
    return made


def test_serialisation_round_trip() -> None:
    made = trigger(grace_until=123.0, conn_id="github_other")
    classpath, kwargs = made.serialize()
    assert classpath == CLASSPATH == "devops_automation.triggers.ci_run.CIRunActionTrigger"
    again = import_string(classpath)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs["watch"] == {"kind": "attempt", "run_id": 1, "attempt": 2} and kwargs["grace_until"] == 123.0


def test_bad_provider_or_kind() -> None:
    with pytest.raises(ValueError, match="github or gitlab"):
        trigger(provider="bitbucket")
    with pytest.raises(ValueError, match="github cannot watch 'pipeline'"):
        trigger(watch={"kind": "pipeline"})


def test_assess() -> None:
    assert assess("github", "cancel", {"main": {"status": "completed", "conclusion": "cancelled"}}, {})[0]
    assert not assess("github", "attempt", {"main": {"status": "in_progress"}}, {})[0]
    statuses = [{"id": 1, "state": "queued", "created_at": "2026-01-01T00:00:00Z"}]
    assert not assess("github", "deployment", {"main": statuses}, {})[0]
    statuses.append({"id": 2, "state": "error", "created_at": "2026-01-01T00:01:00Z", "log_url": "u"})
    ended, observed = assess("github", "deployment", {"main": list(reversed(statuses))}, {})
    assert ended and observed == {
        "state": "error",
        "at": "2026-01-01T00:01:00Z",
        "log_url": "u",
        "states": ["queued", "error"],
    }
    jobs = [
        {"id": 1, "name": "unit", "status": "failed"},
        {"id": 2, "name": "lint", "status": "success"},
        {"id": 3, "name": "unit", "status": "running"},
    ]
    answers = {"main": {"status": "running"}, "jobs": jobs}
    assert not assess("gitlab", "pipeline", answers, {"after_job_id": 2})[0]
    jobs[2]["status"] = "success"
    ended, observed = assess("gitlab", "pipeline", {"main": {"status": "success"}, "jobs": jobs}, {"after_job_id": 2})
    assert ended and observed["new_jobs"] == [{"id": 3, "name": "unit", "status": "success"}]
    assert observed["retried_jobs"] == [1]
    # no new job yet (the retry has not registered them): not ended, whatever the pipeline says
    assert not assess("gitlab", "pipeline", {"main": {"status": "failed"}, "jobs": jobs[:2]}, {"after_job_id": 2})[0]


@pytest.fixture
def failed_run(sandbox, sandbox_conns) -> int:
    made = sandbox.control(
        "github",
        "POST",
        "/repos/acme/infra/runs",
        json={"runs": [{"outcome": "failure", "age_s": 3600, "duration_s": 60}]},
    )
    return made["run_ids"][0]


async def test_waits_for_the_new_attempt(sandbox, failed_run) -> None:
    url = f"{sandbox.base_url}/github/repos/acme/infra/actions/runs/{failed_run}/rerun-failed-jobs"
    assert requests.post(url, headers=GH_AUTH, timeout=10).status_code == 201
    made = trigger(watch={"kind": "attempt", "run_id": failed_run, "attempt": 2})

    async def sleep(seconds: float) -> None:  # each pause moves the sandbox on by ten minutes
        made.slept.append(seconds)
        sandbox.advance(600)

    made._sleep = sleep
    event = await made.wait()
    assert event["status"] == "done", event
    assert (event["observed"]["status"], event["observed"]["conclusion"], event["observed"]["run_attempt"]) == (
        "completed",
        "success",
        2,
    )
    assert made.slept and event["requests"] == len(made.slept) + 1


async def test_a_rate_limit_is_waited_out_not_an_error(sandbox, failed_run) -> None:
    sandbox.fault(system="github", method="GET", path="/attempts/1$", status=429, retry_after=7, times=1)
    made = trigger(watch={"kind": "attempt", "run_id": failed_run, "attempt": 1})
    event = await made.wait()
    assert event["status"] == "done" and made.slept == [7.0]


async def test_404_is_an_error_at_once(sandbox, failed_run) -> None:
    event = await trigger(watch={"kind": "attempt", "run_id": failed_run, "attempt": 5}).wait()
    assert (event["status"], event["http_status"]) == ("error", 404)
    assert "Not Found" in event["message"]


async def test_unreachable_for_too_long_is_an_error(sandbox, failed_run) -> None:
    sandbox.fault(system="github", method="GET", path="/attempts/", status=502)
    made = trigger(watch={"kind": "attempt", "run_id": failed_run, "attempt": 1}, unreachable_timeout_s=0.2)

    async def short(seconds: float) -> None:  # the unreachable time is wall-clock time
        time.sleep(0.1)

    made._sleep = short
    event = await made.wait()
    assert event["status"] == "error" and "unreachable for 0 s: HTTP 502" in event["message"]


async def test_a_cancel_not_taken_and_the_deadline(sandbox, sandbox_conns) -> None:
    made = sandbox.control(
        "github",
        "POST",
        "/repos/acme/infra/runs",
        json={"runs": [{"age_s": 60, "queue_s": 1, "duration_s": 3600, "ignores_cancel": True}]},
    )
    run_id = made["run_ids"][0]
    url = f"{sandbox.base_url}/github/repos/acme/infra/actions/runs/{run_id}/cancel"
    assert requests.post(url, headers=GH_AUTH, timeout=10).status_code == 202
    watch = {"kind": "cancel", "run_id": run_id}
    event = await trigger(watch=watch, grace_until=time.time()).wait()
    assert event["status"] == "not_cancelled" and event["observed"]["status"] == "in_progress"
    event = await trigger(watch=watch, deadline=time.time()).wait()
    assert event["status"] == "timeout" and event["observed"]["status"] == "in_progress"


async def test_gitlab_pipeline_retry_until_its_new_jobs_finish(sandbox, sandbox_conns) -> None:
    made = sandbox.control(
        "gitlab",
        "POST",
        "/projects/payments%2Fcheckout-api/pipelines",
        json={"jobs": [{"name": "build", "stage": "build"}, {"name": "unit", "stage": "test", "status": "failed"}]},
    )
    after = max(j["id"] for j in made["jobs"])
    sandbox.control("gitlab", "POST", "/runner", json={"queue_s": 5, "duration_s": 20})
    headers = {"PRIVATE-TOKEN": "glpat-sandbox-token"}
    url = f"{sandbox.base_url}/gitlab/api/v4/projects/2001/pipelines/{made['id']}/retry"
    assert requests.post(url, headers=headers, timeout=10).status_code == 201
    waiting = trigger(
        provider="gitlab",
        repo="payments/checkout-api",
        watch={"kind": "pipeline", "pipeline_id": made["id"], "after_job_id": after},
    )

    async def sleep(seconds: float) -> None:
        waiting.slept.append(seconds)
        sandbox.advance(10)

    waiting._sleep = sleep
    event = await waiting.wait()
    assert event["status"] == "done", event
    assert event["observed"]["status"] == "success"
    assert [j["name"] for j in event["observed"]["new_jobs"]] == ["unit"]
    assert event["observed"]["retried_jobs"] == [after]
    assert len(waiting.slept) >= 2  # it was pending, then running, before it ended
