"""GitLab sandbox for ci_run_action: the simulated runner that moves retried jobs along the clock (off by
default), pipeline retries stage after stage, and the environments list."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from include.sandbox.app import create_app

AUTH = {"PRIVATE-TOKEN": "glpat-sandbox-token"}
API = "/gitlab/api/v4/projects/2001"
CONTROL = "/_sandbox/gitlab"


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_app(systems=["gitlab"]))


def add_pipeline(client: TestClient, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post(f"{CONTROL}/projects/2001/pipelines", json={"jobs": jobs})
    assert r.status_code == 200, r.text
    return r.json()


def job(client: TestClient, job_id: int) -> dict[str, Any]:
    return client.get(f"{API}/jobs/{job_id}", headers=AUTH).json()


def advance(client: TestClient, seconds: float) -> None:
    client.post("/_sandbox/clock/advance", json={"seconds": seconds})


def test_without_a_runner_a_retried_job_stays_pending(client: TestClient) -> None:
    made = add_pipeline(client, [{"name": "unit", "status": "failed"}])
    new = client.post(f"{API}/jobs/{made['jobs'][0]['id']}/retry", headers=AUTH).json()
    advance(client, 3600)
    assert job(client, new["id"])["status"] == "pending"


def test_the_runner_moves_a_retried_job_along_the_clock(client: TestClient) -> None:
    assert client.post(f"{CONTROL}/runner", json={"queue_s": 5, "duration_s": 30, "status": "failed"}).json() == {
        "queue_s": 5.0,
        "duration_s": 30.0,
        "status": "failed",
    }
    made = add_pipeline(client, [{"name": "unit", "status": "failed"}])
    new = client.post(f"{API}/jobs/{made['jobs'][0]['id']}/retry", headers=AUTH)
    assert new.status_code == 201 and new.json()["status"] == "pending"
    advance(client, 10)
    running = job(client, new.json()["id"])
    assert running["status"] == "running" and running["started_at"] is not None
    advance(client, 30)
    done = job(client, new.json()["id"])
    assert (done["status"], done["failure_reason"]) == ("failed", "script_failure")
    assert done["duration"] == 30.0
    client.delete(f"{CONTROL}/runner")
    again = client.post(f"{API}/jobs/{done['id']}/retry", headers=AUTH).json()
    advance(client, 600)
    assert job(client, again["id"])["status"] == "pending"


def test_a_pipeline_retry_runs_stage_after_stage_and_a_cancel_stops_it(client: TestClient) -> None:
    client.post(f"{CONTROL}/runner", json={"queue_s": 5, "duration_s": 20})
    made = add_pipeline(
        client,
        [
            {"name": "build", "stage": "build", "status": "failed"},
            {"name": "unit", "stage": "test", "status": "skipped"},
        ],
    )
    pid = made["id"]
    assert client.post(f"{API}/pipelines/{pid}/retry", headers=AUTH).status_code == 201
    advance(client, 26)  # build ran from +5 to +25; unit waits for it
    jobs = {j["name"]: j["status"] for j in client.get(f"{API}/pipelines/{pid}/jobs", headers=AUTH).json()}
    assert jobs == {"build": "success", "unit": "created"}
    advance(client, 10)
    jobs = {j["name"]: j["status"] for j in client.get(f"{API}/pipelines/{pid}/jobs", headers=AUTH).json()}
    assert jobs == {"build": "success", "unit": "running"}
    canceled = client.post(f"{API}/pipelines/{pid}/cancel", headers=AUTH).json()
    assert canceled["status"] == "canceled"
    advance(client, 600)  # the runner lets a canceled job go
    assert client.get(f"{API}/pipelines/{pid}", headers=AUTH).json()["status"] == "canceled"


def test_environments(client: TestClient) -> None:
    found = client.get(f"{API}/environments", headers=AUTH).json()
    assert [e["name"] for e in found] == ["staging", "production"]
    assert all(e["state"] == "available" and e["external_url"] for e in found)
    one = client.get(f"{API}/environments", params={"name": "production"}, headers=AUTH).json()
    assert [e["name"] for e in one] == ["production"]
    assert [e["name"] for e in client.get(f"{API}/environments", params={"search": "stag"}, headers=AUTH).json()] == [
        "staging"
    ]
    both = client.get(f"{API}/environments", params={"name": "x", "search": "y"}, headers=AUTH)
    assert both.status_code == 400 and "400 Bad request" in both.json()["message"]
    assert client.get("/gitlab/api/v4/projects/424242/environments", headers=AUTH).status_code == 404
