"""The GitHub and GitLab hooks' writes for ci_run_action against the sandbox: answers, the permission a
403 lacks, 404 and 409, environments and deployments, and the triggerer's async clients."""

from __future__ import annotations

import pytest

from devops_automation.hooks.api import ApiError
from devops_automation.hooks.github import ACTIONS_WRITE, GitHubHook, GitHubPermissionError
from devops_automation.hooks.gitlab import GitLabAccessError, GitLabHook, GitLabPermissionError


@pytest.fixture
def github(sandbox_conns, sandbox) -> GitHubHook:
    return GitHubHook()


@pytest.fixture
def gitlab(sandbox_conns, sandbox) -> GitLabHook:
    return GitLabHook()


def add_run(sandbox, **spec) -> int:
    return sandbox.control("github", "POST", "/repos/acme/infra/runs", json={"runs": [spec]})["run_ids"][0]


def test_github_rerun_and_cancel_answers(github, sandbox) -> None:
    failed = add_run(sandbox, outcome="failure", age_s=3600, duration_s=60)
    status, body, date = github.rerun_run("acme/infra", failed, failed_only=True)
    assert (status, body) == (201, {}) and date
    assert github.workflow_run("acme/infra", failed)["run_attempt"] == 2
    running = add_run(sandbox, age_s=60, queue_s=1, duration_s=3600)
    assert github.cancel_run("acme/infra", running)[0] == 202
    with pytest.raises(ApiError) as done:
        github.cancel_run("acme/infra", running, force=True)
    assert done.value.status == 409 and "completed" in done.value.message
    posts = [r["path"] for r in sandbox.requests(system="github", method="POST")]
    assert posts == [
        f"/repos/acme/infra/actions/runs/{failed}/rerun-failed-jobs",
        f"/repos/acme/infra/actions/runs/{running}/cancel",
        f"/repos/acme/infra/actions/runs/{running}/force-cancel",
    ]


def test_github_403_on_a_write_names_the_permission_and_is_not_retried(github, sandbox) -> None:
    failed = add_run(sandbox, outcome="failure", age_s=3600, duration_s=60)
    sandbox.control("github", "POST", "/repos/acme/infra/forbidden", json={"path": "/rerun$"})
    with pytest.raises(GitHubPermissionError) as refused:
        github.rerun_run("acme/infra", failed)
    assert refused.value.status == 403 and refused.value.permission == ACTIONS_WRITE
    assert "the token lacks actions:write" in str(refused.value)
    assert "Resource not accessible by personal access token" in str(refused.value)
    assert len(sandbox.requests(system="github", method="POST")) == 1


def test_github_deployments_and_environments(github, sandbox) -> None:
    found = github.deployments_with_statuses("acme/shop", "production", limit=3)
    assert len(found) == 3 and all(d["environment"] == "production" and d["statuses"] for d in found)
    assert found[0]["created_at"] >= found[1]["created_at"]
    assert [e["name"] for e in github.environments("acme/shop")] == ["production", "staging"]
    status, made, _ = github.create_deployment(
        "acme/shop", found[2]["sha"], "production", description="redeploy", payload={"k": "v"}
    )
    assert status == 201 and made["sha"] == found[2]["sha"] and made["payload"] == {"k": "v"}
    assert github.deployment("acme/shop", made["id"])["description"] == "redeploy"


async def test_github_async_client_has_the_url_and_token(github, sandbox) -> None:
    async with await github.async_client(timeout=5) as client:
        assert str(client.base_url).rstrip("/") == f"{sandbox.base_url}/github"
        assert client.headers["authorization"].startswith("Bearer ghp_")
        assert client.headers["x-github-api-version"] == "2022-11-28"
        assert (await client.get("/repos/acme/infra")).status_code == 200


def test_gitlab_retry_cancel_and_job_retry(gitlab, sandbox) -> None:
    made = sandbox.control(
        "gitlab",
        "POST",
        "/projects/2001/pipelines",
        json={"jobs": [{"name": "unit", "status": "failed"}, {"name": "e2e", "stage": "e2e", "status": "running"}]},
    )
    status, body, _ = gitlab.retry_pipeline("payments/checkout-api", made["id"])
    assert status == 201 and body["id"] == made["id"]
    assert gitlab.cancel_pipeline(2001, made["id"])[1]["status"] == "canceled"
    old = made["jobs"][0]["id"]
    retried = [j for j in gitlab.pipeline_jobs(2001, made["id"], include_retried=True) if j["name"] == "unit"]
    newest = max(j["id"] for j in retried)
    status, new_job, _ = gitlab.retry_job_write(2001, newest)
    assert status == 201 and new_job["id"] > newest > old


def test_gitlab_403_and_404_on_writes(gitlab, sandbox) -> None:
    sandbox.fault(system="gitlab", method="POST", path="/retry$", status=403)
    with pytest.raises(GitLabPermissionError) as refused:
        gitlab.retry_pipeline(2001, 1)
    message = str(refused.value)
    assert "pipeline 1 of 2001: forbidden; the token needs the api scope and at least the Developer role" in message
    assert "(Maintainer where the branch or the environment is protected)" in message and "403 Forbidden" in message
    sandbox.clear_faults()
    with pytest.raises(GitLabAccessError) as missing:
        gitlab.cancel_pipeline(2001, 123)
    assert missing.value.status == 404 and "pipeline 123 of 2001: not found" in str(missing.value)


def test_gitlab_environments_and_latest_deployments(gitlab, sandbox) -> None:
    assert [e["name"] for e in gitlab.environments("payments/checkout-api")] == ["staging", "production"]
    assert [e["name"] for e in gitlab.environments(2001, name="production")] == ["production"]
    newest = gitlab.latest_deployments(2001, "production", limit=5)
    assert len(newest) == 5 and all(d["status"] == "success" for d in newest)
    assert [d["id"] for d in newest] == sorted((d["id"] for d in newest), reverse=True)
    every = gitlab.latest_deployments(2001, "production", status=None)
    assert {d["status"] for d in every} >= {"success", "failed"}


async def test_gitlab_async_client(gitlab, sandbox) -> None:
    async with await gitlab.async_client(timeout=5) as client:
        assert str(client.base_url).rstrip("/") == f"{sandbox.base_url}/gitlab/api/v4"
        assert client.headers["private-token"] == "glpat-sandbox-token"
        assert (await client.get("/projects/2001")).json()["id"] == 2001
