"""ci_run_action's form check, guards, plans, recovery check and outcomes (pure)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from devops_automation.workflows.ci_run_action.plan import (
    Refused,
    choose_deployment,
    github_succeeded,
    gitlab_succeeded,
    linked_run_id,
    outcome,
    parse_request,
    plan_github_redeploy,
    plan_github_run,
    plan_gitlab_pipeline,
    plan_gitlab_redeploy,
    took_effect,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
GH = {"provider": "github", "repository": "acme/api", "action": "rerun_failed", "run_id": "123"}
GL = {"provider": "gitlab", "repository": "payments/api", "action": "rerun_failed", "run_id": 900}


def gh_run(**values) -> dict:
    return {
        "id": 123,
        "status": "completed",
        "conclusion": "failure",
        "run_attempt": 1,
        "created_at": "2026-12-04T10:00:00Z",
        "html_url": "https://github.com/acme/api/actions/runs/123",
        "repository": {"full_name": "acme/api"},
        **values,
    }


# -- the form --------------------------------------------------------------------------------------
def test_a_github_request_with_minutes_as_seconds() -> None:
    req = parse_request(
        {**GH, "reason": " flaky ", "notify": ["telegram", "slack", "slack"], "timeout_minutes": 10,
         "force_cancel_after_minutes": 0, "poll_interval_seconds": 5, "dry_run": "false"}
    )  # fmt: skip
    assert (req.provider, req.repo, req.action, req.run_id, req.reason) == (
        "github",
        "acme/api",
        "rerun_failed",
        123,
        "flaky",
    )
    assert (req.timeout_s, req.force_cancel_after_s, req.poll_interval_s) == (600.0, None, 5.0)
    assert (req.notify, req.dry_run) == (("telegram", "slack"), False)
    assert parse_request({**GH, "run_id": "#123", "dry_run": True}).dry_run is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"provider": "bitbucket"}, "Param provider: github or gitlab"),
        ({"action": "restart"}, "Param action: one of rerun, rerun_failed, cancel, redeploy"),
        ({"repository": "acme"}, "Param repository: a GitHub repository is 'owner/name'"),
        ({"repository": "acme/../x"}, "Param repository"),
        ({"run_id": ""}, "Param run_id: rerun_failed needs the run id"),
        ({"run_id": "abc"}, "Param run_id: the run id must be a positive number"),
        ({"run_id": True}, "Param run_id"),
        ({"action": "cancel", "job_id": 5}, "Param job_id: only a rerun can be limited to one job, not cancel"),
        ({"action": "redeploy", "run_id": ""}, "Param environment: redeploy needs the environment"),
        ({"action": "redeploy", "run_id": "", "environment": "prod"}, "Param deployment: redeploy needs"),
        ({"action": "redeploy", "run_id": "", "environment": "prod", "deployment": "v1.2"}, "7 to 40 hex"),
        ({"action": "redeploy", "environment": "prod", "deployment": "abcdef1"}, "leave them empty for redeploy"),
        ({"redeploy_mode": "rollback"}, "Param redeploy_mode: one of rerun_workflow, create_deployment"),
        ({"notify": ["email"]}, "Param notify: a list of slack, telegram"),
        ({"timeout_minutes": -1}, "Param timeout_minutes: must not be negative"),
        ({"poll_interval_seconds": "often"}, "Param poll_interval_seconds: a number is needed"),
    ],
)
def test_form_mistakes_name_the_param(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_request({**GH, **change})


def test_gitlab_form_rules() -> None:
    assert parse_request({**GL, "repository": "2001"}).repo == "2001"
    with pytest.raises(ValueError, match="a GitLab project is its id or path 'group/project'"):
        parse_request({**GL, "repository": "payments"})
    with pytest.raises(ValueError, match="create_deployment is GitHub's"):
        parse_request(
            {**GL, "action": "redeploy", "run_id": "", "environment": "production", "deployment": "abcdef12",
             "redeploy_mode": "create_deployment"}
        )  # fmt: skip


# -- GitHub runs -----------------------------------------------------------------------------------
def test_github_rerun_failed_plan() -> None:
    plan = plan_github_run(parse_request(GH), gh_run(run_attempt=2), NOW)
    assert (plan.method, plan.path, plan.call) == (
        "POST",
        "/repos/acme/api/actions/runs/123/rerun-failed-jobs",
        "rerun_failed",
    )
    assert plan.watch == {"kind": "attempt", "run_id": 123, "attempt": 3}
    assert (plan.attempt_before, plan.run_id, plan.url) == (2, "123", "https://github.com/acme/api/actions/runs/123")
    assert "attempt 2 -> 3" in plan.what


@pytest.mark.parametrize(
    ("action", "run", "message"),
    [
        ("rerun", {"status": "in_progress", "conclusion": None}, "is still in_progress (attempt 1): re-run it once"),
        ("rerun", {"status": "queued", "conclusion": None}, "is still queued"),
        (
            "rerun",
            {"created_at": "2026-11-03T11:59:00Z"},
            "more than 30 days before this request (2026-12-04 12:00 UTC)",
        ),
        ("rerun", {"run_attempt": 50}, "has had 50 attempts: GitHub allows at most 50"),
        ("rerun_failed", {"conclusion": "success"}, "concluded success: it has no failed jobs to re-run"),
        ("cancel", {}, "has already completed (failure): there is nothing to cancel"),
    ],
)
def test_github_guards(action: str, run: dict, message: str) -> None:
    with pytest.raises(Refused, match=re.escape(message)):
        plan_github_run(parse_request({**GH, "action": action}), gh_run(**run), NOW)


def test_a_run_of_exactly_30_days_may_still_be_re_run() -> None:
    plan = plan_github_run(parse_request({**GH, "action": "rerun"}), gh_run(created_at="2026-11-04T12:00:00Z"), NOW)
    assert plan.path.endswith("/runs/123/rerun")


def test_github_cancel_and_one_job_rerun() -> None:
    cancel = plan_github_run(
        parse_request({**GH, "action": "cancel"}), gh_run(status="in_progress", conclusion=None), NOW
    )
    assert (cancel.path, cancel.watch, cancel.call) == (
        "/repos/acme/api/actions/runs/123/cancel",
        {"kind": "cancel", "run_id": 123},
        "cancel",
    )
    req = parse_request({**GH, "action": "rerun", "job_id": 77})
    job = {"id": 77, "run_id": 123, "status": "completed", "name": "unit"}
    plan = plan_github_run(req, gh_run(), NOW, job)
    assert (plan.path, plan.job_id, plan.call) == ("/repos/acme/api/actions/jobs/77/rerun", "77", "rerun_job")
    with pytest.raises(Refused, match="job 77 is not a job of acme/api run 123"):
        plan_github_run(req, gh_run(), NOW, {**job, "run_id": 5})
    with pytest.raises(Refused, match=r"job 77 \(unit\) of acme/api run 123 is still in_progress"):
        plan_github_run(req, gh_run(), NOW, {**job, "status": "in_progress"})


# -- deployments -----------------------------------------------------------------------------------
def gh_dep(n: int, sha: str, states: list[str], run_id: int | None = None, day: int = 1) -> dict:
    url = f"https://github.com/acme/api/actions/runs/{run_id}" if run_id else ""
    return {
        "id": n,
        "sha": sha,
        "created_at": f"2026-12-0{day}T10:00:00Z",
        "statuses": [
            {"id": n * 10 + k, "state": s, "created_at": f"2026-12-0{day}T10:0{k}:00Z", "log_url": url}
            for k, s in enumerate(states)
        ],
    }


DEPLOYMENTS = [  # newest first
    gh_dep(5, "e" * 40, ["queued", "success"], 55, day=4),
    gh_dep(4, "d" * 40, ["queued", "failure"], 44, day=3),
    gh_dep(3, "c" * 40, ["queued", "success", "inactive"], 33, day=2),
    gh_dep(2, "b" * 40, ["queued", "success"], None, day=1),
]
REDEPLOY = {**GH, "action": "redeploy", "run_id": "", "environment": "production"}


def test_choose_the_newest_successful_deployment_of_a_sha_or_an_id() -> None:
    target, current = choose_deployment(
        parse_request({**REDEPLOY, "deployment": "ccccccc"}), DEPLOYMENTS, succeeded=github_succeeded
    )
    assert (target["id"], current["id"]) == (3, 5)
    target, _ = choose_deployment(
        parse_request({**REDEPLOY, "deployment": "2"}), DEPLOYMENTS, succeeded=github_succeeded
    )
    assert target["id"] == 2


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            "fffffff",
            (
                "fffffff was never deployed to 'production' of acme/api; its successful deployments, newest first: "
                "eeeeeee (deployment 5, 2026-12-04 10:00 UTC), ccccccc (deployment 3"
            ),
        ),
        ("ddddddd", "ddddddd was deployed there but never successfully"),
        ("eeeeeee", "eeeeeee is what 'production' of acme/api runs now (deployment 5, 2026-12-04 10:00 UTC)"),
    ],
)
def test_redeploy_guards(deployment: str, message: str) -> None:
    with pytest.raises(Refused, match=re.escape(message)):
        choose_deployment(
            parse_request({**REDEPLOY, "deployment": deployment}), DEPLOYMENTS, succeeded=github_succeeded
        )


def test_an_environment_without_deployments_is_named_with_the_known_ones() -> None:
    with pytest.raises(Refused, match=r"no deployment to environment 'production' \(its environments: staging\)"):
        choose_deployment(
            parse_request({**REDEPLOY, "deployment": "abcdef1"}),
            [],
            succeeded=github_succeeded,
            environments=["staging"],
        )


def test_github_redeploy_plans() -> None:
    req = parse_request({**REDEPLOY, "deployment": "ccccccc"})
    target = DEPLOYMENTS[2]
    assert linked_run_id(target) == 33 and linked_run_id(DEPLOYMENTS[3]) is None
    run = gh_run(id=33, conclusion="success", html_url="https://github.com/acme/api/actions/runs/33", name="Deploy")
    plan = plan_github_redeploy(req, target, NOW, repo="acme/api", run=run)
    assert (plan.path, plan.run_id, plan.deployment_id, plan.target_sha) == (
        "/repos/acme/api/actions/runs/33/rerun",
        "33",
        "3",
        "c" * 40,
    )
    assert plan.watch == {"kind": "attempt", "run_id": 33, "attempt": 2}
    with pytest.raises(Refused, match=r"links to no workflow run .* set redeploy_mode to create_deployment"):
        plan_github_redeploy(req, DEPLOYMENTS[3], NOW, repo="acme/api", run=None)
    with pytest.raises(Refused, match=r"more than 30 days .*; set redeploy_mode to create_deployment"):
        plan_github_redeploy(req, target, NOW, repo="acme/api", run={**run, "created_at": "2026-10-01T00:00:00Z"})
    create = parse_request({**REDEPLOY, "deployment": "ccccccc", "redeploy_mode": "create_deployment"})
    plan = plan_github_redeploy(create, target, NOW, repo="acme/api", marker={"run_id": "manual__1"})
    assert (plan.path, plan.call, plan.watch) == (
        "/repos/acme/api/deployments",
        "create_deployment",
        {"kind": "deployment", "deployment_id": None},
    )
    assert plan.body["ref"] == "c" * 40 and plan.body["environment"] == "production"
    assert plan.body["payload"] == {"ci_run_action": {"run_id": "manual__1"}}


# -- GitLab ----------------------------------------------------------------------------------------
PROJECT = {"id": 2001, "path_with_namespace": "payments/api"}


def gl_job(n: int, name: str, status: str, stage: str = "test") -> dict:
    return {"id": n, "name": name, "status": status, "stage": stage, "web_url": f"https://gitlab/-/jobs/{n}"}


def test_gitlab_pipeline_retry_plan() -> None:
    jobs = [
        gl_job(1, "build", "success"),
        gl_job(2, "unit", "failed"),
        gl_job(3, "lint", "canceled"),
        gl_job(4, "unit", "failed"),
    ]
    jobs[1]["status"] = "failed"  # attempt 1 of unit; 4 is its newest attempt
    pipeline = {"id": 900, "status": "failed", "web_url": "https://gitlab/-/pipelines/900"}
    plan = plan_gitlab_pipeline(parse_request(GL), PROJECT, pipeline, jobs)
    assert (plan.path, plan.call, plan.project, plan.repo) == (
        "/projects/2001/pipelines/900/retry",
        "retry_pipeline",
        "2001",
        "payments/api",
    )
    assert plan.watch == {"kind": "pipeline", "pipeline_id": 900, "after_job_id": 4}
    assert plan.retried_job_ids == ["3", "4"]


@pytest.mark.parametrize(
    ("action", "status", "jobs", "message"),
    [
        ("rerun", "running", [gl_job(1, "unit", "running")], "is still running: re-run it once it has finished"),
        (
            "rerun",
            "success",
            [gl_job(1, "unit", "success")],
            "has no failed or canceled job \\(success\\): GitLab retries only",
        ),
        ("cancel", "failed", [gl_job(1, "unit", "failed")], "has already finished \\(failed\\)"),
    ],
)
def test_gitlab_guards(action: str, status: str, jobs: list, message: str) -> None:
    with pytest.raises(Refused, match=message):
        plan_gitlab_pipeline(parse_request({**GL, "action": action}), PROJECT, {"id": 900, "status": status}, jobs)


def test_gitlab_one_job_retry() -> None:
    jobs = [gl_job(1, "unit", "failed"), gl_job(2, "unit", "success")]
    req = parse_request({**GL, "action": "rerun", "job_id": 2})
    plan = plan_gitlab_pipeline(req, PROJECT, {"id": 900, "status": "success"}, jobs)
    assert (plan.path, plan.watch, plan.retried_job_ids) == (
        "/projects/2001/jobs/2/retry",
        {"kind": "job", "job_id": None},
        ["2"],
    )
    with pytest.raises(Refused, match="job 1 \\(unit\\) was retried since: its newest attempt is 2"):
        plan_gitlab_pipeline(
            parse_request({**GL, "action": "rerun", "job_id": 1}), PROJECT, {"id": 900, "status": "success"}, jobs
        )
    with pytest.raises(Refused, match="job 7 is not a job of payments/api pipeline 900"):
        plan_gitlab_pipeline(
            parse_request({**GL, "action": "rerun", "job_id": 7}), PROJECT, {"id": 900, "status": "success"}, jobs
        )


def test_gitlab_redeploy_retries_the_newest_attempt_of_the_deploy_job() -> None:
    req = parse_request(
        {**GL, "action": "redeploy", "run_id": "", "environment": "production", "deployment": "abcdef12"}
    )
    target = {"id": 70, "sha": "abcdef12" + "0" * 32, "status": "success",
              "deployable": {"id": 10, "name": "deploy", "pipeline": {"id": 900}, "web_url": "u10"}}  # fmt: skip
    jobs = [gl_job(10, "deploy", "success"), gl_job(12, "deploy", "failed"), gl_job(11, "unit", "success")]
    plan = plan_gitlab_redeploy(req, PROJECT, target, jobs)
    assert (plan.path, plan.run_id, plan.retried_job_ids, plan.target_sha) == (
        "/projects/2001/jobs/12/retry",
        "900",
        ["12"],
        target["sha"],
    )
    assert gitlab_succeeded(target) and not gitlab_succeeded({**target, "status": "failed"})
    with pytest.raises(Refused, match="deploy job 13 \\(deploy\\) of abcdef1 is still running"):
        plan_gitlab_redeploy(req, PROJECT, target, [*jobs, gl_job(13, "deploy", "running")])


# -- after the write -------------------------------------------------------------------------------
def test_took_effect_per_kind() -> None:
    attempt = {"watch": {"kind": "attempt"}, "attempt_before": 1}
    assert took_effect(attempt, run={"run_attempt": 2}) and not took_effect(attempt, run={"run_attempt": 1})
    cancel = {"watch": {"kind": "cancel"}}
    assert took_effect(cancel, run={"status": "completed"}) and took_effect(cancel, run={"status": "canceling"})
    assert not took_effect(cancel, run={"status": "in_progress"})
    pipeline = {"watch": {"kind": "pipeline"}, "after_job_id": "4"}
    assert took_effect(pipeline, jobs=[{"id": 5}]) and not took_effect(pipeline, jobs=[{"id": 4}])
    job = {"watch": {"kind": "job"}, "retried_job_ids": ["4"]}
    assert took_effect(job, jobs=[{"id": 4, "name": "deploy"}, {"id": 9, "name": "deploy"}])
    assert not took_effect(job, jobs=[{"id": 4, "name": "deploy"}, {"id": 9, "name": "unit"}])
    assert took_effect({"watch": {"kind": "deployment"}}, jobs=[{"id": 1}])
    assert not took_effect({"watch": {"kind": "deployment"}}, jobs=[])


def test_outcomes() -> None:
    rerun = parse_request(GH)
    observed = {"conclusion": "failure", "run_attempt": 2}
    assert outcome(rerun, {"watch": {"kind": "attempt"}, "run_id": "1"}, observed) == (
        "failure", "attempt 2 of run 1 finished: failure", True)  # fmt: skip
    redeploy = parse_request({**REDEPLOY, "deployment": "ccccccc"})
    assert outcome(redeploy, {"watch": {"kind": "attempt"}, "run_id": "1"}, {"conclusion": "failure"})[2] is False
    cancel = parse_request({**GH, "action": "cancel"})
    assert outcome(cancel, {"watch": {"kind": "cancel"}, "run_id": "1"}, {"conclusion": "cancelled"})[0::2] == (
        "cancelled",
        True,
    )
    assert outcome(cancel, {"watch": {"kind": "cancel"}, "run_id": "1"}, {"conclusion": "success"}) == (
        "success", "run 1 finished success before the cancel landed", False)  # fmt: skip
    assert outcome(redeploy, {"watch": {"kind": "deployment"}, "deployment_id": "9"}, {"state": "inactive"})[0::2] == (
        "success",
        True,
    )
    assert outcome(redeploy, {"watch": {"kind": "deployment"}, "deployment_id": "9"}, {"state": "error"})[0::2] == (
        "failure",
        False,
    )
    gitlab = parse_request(GL)
    observed = {"status": "success", "new_jobs": [{"name": "unit", "status": "success"}]}
    assert outcome(gitlab, {"watch": {"kind": "pipeline"}, "run_id": "900"}, observed) == (
        "success", "pipeline 900 finished success (retried: unit success)", True)  # fmt: skip
    gl_cancel = parse_request({**GL, "action": "cancel"})
    assert outcome(gl_cancel, {"watch": {"kind": "cancel"}, "run_id": "900"}, {"status": "canceled"})[0::2] == (
        "cancelled",
        True,
    )
