"""GitHub sandbox for ci_run_action: a run that ignores /cancel until /force-cancel, creating deployments
(a simulated CD system posts their statuses), environments, and a re-run of a deploying run deploying its
SHA again."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app

AUTH = {"Authorization": "Bearer ghp_sandboxtoken000000000000000000000000", "X-GitHub-Api-Version": "2022-11-28"}
API = "/github"
CONTROL = "/_sandbox/github"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["github"]))


def add_run(client: TestClient, **spec: Any) -> int:
    return client.post(f"{CONTROL}/repos/acme/infra/runs", json={"runs": [spec]}).json()["run_ids"][0]


def get(client: TestClient, path: str, **kw: Any) -> Any:
    r = client.get(f"{API}{path}", headers=AUTH, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_run_ignoring_cancel_stops_only_when_force_cancelled(client: TestClient) -> None:
    run_id = add_run(client, age_s=60, queue_s=1, duration_s=3600, ignores_cancel=True)
    path = f"/repos/acme/infra/actions/runs/{run_id}"
    assert client.post(f"{API}{path}/cancel", headers=AUTH).status_code == 202
    assert get(client, path)["status"] == "in_progress"
    assert client.post(f"{API}{path}/force-cancel", headers=AUTH).status_code == 202
    run = get(client, path)
    assert (run["status"], run["conclusion"]) == ("completed", "cancelled")
    again = client.post(f"{API}{path}/force-cancel", headers=AUTH)
    assert again.status_code == 409 and again.json()["message"] == "Cannot cancel a workflow run that is completed."
    assert client.get(f"{CONTROL}/counts").json()["cancels_ignored"] == 1


def test_create_a_deployment_and_its_statuses_follow(client: TestClient) -> None:
    old = get(client, "/repos/acme/api/deployments", params={"environment": "production"})[3]
    client.post(f"{CONTROL}/deploy_outcome", json={"state": "failure"})
    body = {"ref": old["sha"][:10], "environment": "production", "payload": {"why": "rollback"}, "auto_merge": False}
    r = client.post(f"{API}/repos/acme/api/deployments", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["sha"], made["ref"], made["environment"], made["payload"]) == (
        old["sha"],
        old["sha"][:10],
        "production",
        {"why": "rollback"},
    )
    assert made["creator"]["login"] == "devops-automation[bot]"
    states = [s["state"] for s in get(client, f"/repos/acme/api/deployments/{made['id']}/statuses")]
    assert states == ["queued"]
    client.post("/_sandbox/clock/advance", json={"seconds": 100})
    states = [s["state"] for s in get(client, f"/repos/acme/api/deployments/{made['id']}/statuses")]
    assert states == ["failure", "in_progress", "queued"]  # newest first
    assert get(client, "/repos/acme/api/deployments", params={"environment": "production"})[0]["id"] == made["id"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"environment": "production"}, 422, "wasn't supplied"),
        ({"ref": "not-a-branch"}, 422, "No ref found for: not-a-branch"),
        ({"ref": "f" * 40}, 422, "No ref found"),
    ],
)
def test_create_deployment_errors(client: TestClient, body: dict, status: int, message: str) -> None:
    r = client.post(f"{API}/repos/acme/api/deployments", json=body, headers=AUTH)
    assert r.status_code == status and message in r.json()["message"]


def test_create_deployment_needs_a_token_and_the_permission(client: TestClient) -> None:
    anonymous = client.post(f"{API}/repos/acme/api/deployments", json={"ref": "main"})
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    client.post(f"{CONTROL}/repos/acme/api/forbidden", json={"path": "/deployments$"})
    refused = client.post(f"{API}/repos/acme/api/deployments", json={"ref": "main"}, headers=AUTH)
    assert (
        refused.status_code == 403 and refused.json()["message"] == "Resource not accessible by personal access token"
    )


def test_environments_are_those_deployed_to(client: TestClient) -> None:
    shop = get(client, "/repos/acme/shop/environments")
    assert shop["total_count"] == 2 and [e["name"] for e in shop["environments"]] == ["production", "staging"]
    assert get(client, "/repos/acme/infra/environments") == {"total_count": 0, "environments": []}


def test_a_rerun_of_the_run_that_deployed_deploys_its_sha_again(client: TestClient) -> None:
    listed = get(client, "/repos/acme/shop/deployments", params={"environment": "production"})
    target = next(
        d
        for d in listed[1:]
        if d["sha"] != listed[0]["sha"]
        and get(client, f"/repos/acme/shop/deployments/{d['id']}/statuses")[0]["log_url"]
    )
    log_url = get(client, f"/repos/acme/shop/deployments/{target['id']}/statuses")[0]["log_url"]
    run_id = int(log_url.rsplit("/", 1)[1])
    assert client.post(f"{API}/repos/acme/shop/actions/runs/{run_id}/rerun", headers=AUTH).status_code == 201
    newest = get(client, "/repos/acme/shop/deployments", params={"environment": "production"})[0]
    assert (newest["sha"], newest["environment"]) == (target["sha"], "production")
    assert "Re-run of Deploy" in newest["description"]
    client.post("/_sandbox/clock/advance", json={"seconds": 3600})
    statuses = get(client, f"/repos/acme/shop/deployments/{newest['id']}/statuses")
    assert [s["state"] for s in statuses] == ["success", "in_progress", "queued"]
    assert statuses[0]["log_url"].endswith(f"/actions/runs/{run_id}")
